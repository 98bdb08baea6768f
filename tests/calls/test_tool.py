"""POST /tools/memory-query, the ElevenLabs server tool."""

import json
import time

import pytest

from memories.owners import default_owner
from memories.services import NewMemory, create_memory
from testkit.elevenlabs import TOOL_SECRET as SECRET
from testkit.elevenlabs import TOOL_URL as URL

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("call_secrets")]
NEXT_SECRET = "tool_test_next"


@pytest.fixture(autouse=True)
def rotating_secrets(call_secrets, settings):
    settings.ELEVENLABS_TOOL_SECRETS = [SECRET, NEXT_SECRET]


@pytest.fixture
def alice_memories():
    for text in ("I prefer email over phone calls", "My invoice from March was wrong", "I have a dog called Rex"):
        create_memory(default_owner("alice"), NewMemory(text))
    create_memory(default_owner("bob"), NewMemory("Bob's invoice from March was wrong too"))


def ask(client, body, secret=SECRET, raw=None, header="X-Memory-Secret"):
    headers = {header: secret} if secret is not None else {}
    data = raw if raw is not None else json.dumps(body)
    return client.post(URL, data=data, content_type="application/json", headers=headers)


def test_answers_compact_json_for_the_agent(client, alice_memories):
    response = ask(client, {"query": "problem with my invoice", "user_id": "alice", "limit": 2})
    assert response.status_code == 200
    data = response.json()
    assert set(data) == {"memories", "summary"}
    assert len(data["memories"]) == 2
    top = data["memories"][0]
    assert set(top) == {"id", "text", "sector", "score", "when"}
    assert top["text"] == "My invoice from March was wrong"
    assert "today" in top["when"]
    assert data["summary"].startswith("2 memories found; most relevant: My invoice")
    assert b'": ' not in response.content  # compact separators: the LLM reads every byte
    timing = response["Server-Timing"]
    assert "embed;dur=" in timing and "search;dur=" in timing and "rank;dur=" in timing


def test_never_returns_another_users_memories(client, alice_memories):
    for user in ("alice", "carol"):
        data = ask(client, {"query": "Bob's invoice from March", "user_id": user, "limit": 50}).json()
        assert all("Bob" not in memory["text"] for memory in data["memories"])
    assert ask(client, {"query": "invoice", "user_id": "carol"}).json()["memories"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"parameters": {"query": "invoice", "user_id": "alice"}},
        {"query": "invoice", "caller_id": "alice"},
        {"query": "invoice", "system__caller_id": "alice"},
        {"parameters": {"query": "invoice", "system__caller_id": "alice"}, "tool_call_id": "ignored"},
    ],
)
def test_accepts_nested_parameters_and_user_id_aliases(client, alice_memories, body):
    response = ask(client, body)
    assert response.status_code == 200
    assert response.json()["memories"][0]["text"] == "My invoice from March was wrong"


def test_default_limit_is_five(client):
    for index in range(8):
        create_memory(default_owner("dave"), NewMemory(f"fact number {index} about gardening and roses"))
    assert len(ask(client, {"query": "gardening", "user_id": "dave"}).json()["memories"]) == 5


def test_sector_filter(client, alice_memories):
    create_memory(default_owner("alice"), NewMemory("I felt angry about the invoice", sector="emotional"))
    data = ask(client, {"query": "invoice", "user_id": "alice", "sectors": ["emotional"]}).json()
    assert [m["sector"] for m in data["memories"]] == ["emotional"]
    data = ask(client, {"query": "invoice", "user_id": "alice", "sectors": "emotional, episodic"}).json()
    assert {m["sector"] for m in data["memories"]} <= {"emotional", "episodic"}


@pytest.mark.parametrize(
    ("body", "raw", "message"),
    [
        ({"user_id": "alice"}, None, "query: This field is required."),
        ({"query": "", "user_id": "alice"}, None, "query: This field may not be blank."),
        ({"query": "   ", "user_id": "alice"}, None, "query: This field may not be blank."),
        ({"query": "x" * 1001, "user_id": "alice"}, None, "query: Ensure this field has no more than 1000 characters."),
        ({"query": "hi"}, None, "user_id: This field is required."),
        (
            {"query": "hi", "user_id": "alice", "limit": 0},
            None,
            "limit: Ensure this value is greater than or equal to 1.",
        ),
        (
            {"query": "hi", "user_id": "alice", "limit": 51},
            None,
            "limit: Ensure this value is less than or equal to 50.",
        ),
        ({"query": "hi", "user_id": "alice", "limit": "many"}, None, "limit: A valid integer is required."),
        ({"query": "hi", "user_id": "alice", "limit": True}, None, "limit: A valid integer is required."),
        ({"query": "hi", "user_id": "alice", "sectors": ["gossip"]}, None, "sectors: unknown sector 'gossip'"),
        ({"query": "hi", "user_id": "alice", "sectors": 5}, None, "sectors: sectors must be a list"),
        ({"query": 42, "user_id": "alice"}, None, "query: must be a string"),
        ({"query": "hi", "user_id": ["alice"]}, None, "user_id: must be a string"),
        (None, "this is not json", "Bad request: the body must be JSON."),
        (None, "[1, 2]", "Bad request: the body must be a JSON object."),
        (None, "", "Bad request: the body must be a JSON object."),
    ],
)
def test_bad_input_gets_a_short_readable_400(client, body, raw, message):
    response = ask(client, body, raw=raw)
    assert response.status_code == 400
    error = response.json()["error"]
    assert message in error
    assert len(error) < 160


@pytest.mark.parametrize(
    ("secret", "header"),
    [(None, "X-Memory-Secret"), ("wrong", "X-Memory-Secret"), (SECRET, "X-Other-Header"), ("", "X-Memory-Secret")],
)
def test_bad_or_missing_secret_is_401_without_telling_whether_the_user_exists(client, alice_memories, secret, header):
    known = ask(client, {"query": "invoice", "user_id": "alice"}, secret=secret, header=header)
    unknown = ask(client, {"query": "invoice", "user_id": "nobody"}, secret=secret, header=header)
    assert known.status_code == unknown.status_code == 401
    assert known.content == unknown.content == b'{"error": "Missing or wrong secret."}'


def test_rotated_secret_and_bearer_header_work(client, alice_memories):
    assert ask(client, {"query": "invoice", "user_id": "alice"}, secret=NEXT_SECRET).status_code == 200
    response = client.post(
        URL,
        data=json.dumps({"query": "invoice", "user_id": "alice"}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {SECRET}"},
    )
    assert response.status_code == 200


def test_configurable_header_name(client, settings, alice_memories):
    settings.ELEVENLABS_TOOL_SECRET_HEADER = "X-Agent-Token"
    assert ask(client, {"query": "invoice", "user_id": "alice"}, header="X-Agent-Token").status_code == 200
    assert ask(client, {"query": "invoice", "user_id": "alice"}).status_code == 401


def test_unconfigured_tool_refuses(client, settings):
    settings.ELEVENLABS_TOOL_SECRETS = []
    response = ask(client, {"query": "invoice", "user_id": "alice"}, secret="")
    assert response.status_code == 503
    assert response.json() == {"error": "The memory tool is not configured yet."}


def test_get_is_refused(client):
    assert client.get(URL, headers={"X-Memory-Secret": SECRET}).status_code == 405


def test_provider_outage_is_a_short_503(client, fake_openai):
    fake_openai.fail_next = [500]
    response = ask(client, {"query": "anything new", "user_id": "alice"})
    assert response.status_code == 503
    assert response.json() == {"error": "Memory search is unavailable right now; continue without it."}


def test_a_slow_provider_gets_the_503_sentence_within_the_budget(client, settings, fake_openai, alice_memories):
    settings.TOOL_TIME_BUDGET_SECONDS = 0.5
    fake_openai.delay = 3.0
    started = time.monotonic()
    response = ask(client, {"query": "something never asked before", "user_id": "alice"})
    assert time.monotonic() - started < 1.5
    assert response.status_code == 503
    assert response.json() == {"error": "Memory search is unavailable right now; continue without it."}
    fake_openai.delay = 0
    assert ask(client, {"query": "something never asked before", "user_id": "alice"}).status_code == 200


@pytest.mark.parametrize("broken", ["nan", "zeros", "html", "empty"])
def test_a_broken_provider_answer_is_the_503_sentence_and_is_not_cached(client, fake_openai, alice_memories, broken):
    fake_openai.broken_next = [broken]
    response = ask(client, {"query": "a brand new question", "user_id": "alice"})
    assert response.status_code == 503
    assert ask(client, {"query": "a brand new question", "user_id": "alice"}).status_code == 200
