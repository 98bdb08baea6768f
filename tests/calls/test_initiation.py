"""POST /webhooks/elevenlabs/conversation-initiation: who is calling, and what we remember."""

import json

import pytest
from django.core.management import call_command

from calls import initiation
from calls.models import CallerIdentity
from memories.owners import default_owner
from memories.services import NewMemory, create_memory
from testkit.elevenlabs import INITIATION_SECRET as SECRET
from testkit.elevenlabs import INITIATION_URL as URL
from testkit.elevenlabs import TOOL_SECRET, TOOL_URL

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("call_secrets")]
CALL = {"caller_id": "+16125550100", "agent_id": "agent_7101k2", "called_number": "+18005550199", "call_sid": "CA12"}


@pytest.fixture(autouse=True)
def background_prewarms(monkeypatch):
    """Record background prewarms instead of starting threads that outlive the test."""
    started = []
    monkeypatch.setattr("calls.initiation.prewarm_in_background", lambda: started.append(True))
    return started


def start_call(client, body=CALL, secret=SECRET, raw=None):
    data = raw if raw is not None else json.dumps(body)
    return client.post(URL, data=data, content_type="application/json", headers={"X-Memory-Secret": secret})


def test_unknown_caller_gets_a_new_user_id_and_defaults(client):
    response = start_call(client)
    assert response.status_code == 200
    answer = response.json()
    assert answer["type"] == "conversation_initiation_client_data"
    variables = answer["dynamic_variables"]
    assert variables["user_id"].startswith("usr_") and answer["user_id"] == variables["user_id"]
    assert variables == {
        "user_id": variables["user_id"],
        "memory_context": "",
        "caller_known": False,
        "memory_count": 0,
    }
    assert CallerIdentity.objects.get().phone_number == "+16125550100"
    again = start_call(client, {**CALL, "caller_id": "16125550100"}).json()  # same number, other format
    assert again["user_id"] == answer["user_id"]
    assert again["dynamic_variables"]["caller_known"] is True


def test_known_caller_gets_their_memories_without_any_provider_call(client, fake_openai, settings):
    call_command("prewarm_embeddings", stdout=open("/dev/null", "w"))  # noqa: SIM115
    user_id = start_call(client).json()["user_id"]
    create_memory(default_owner(user_id), NewMemory("I prefer email over phone calls", salience=0.9))
    create_memory(default_owner(user_id), NewMemory("My billing address is 12 Elm Street"))
    create_memory(default_owner("someone-else"), NewMemory("Someone else's secret billing detail"))
    requests_before = len(fake_openai.embedding_requests)
    answer = start_call(client).json()
    assert len(fake_openai.embedding_requests) == requests_before, "no embedding request while the phone rings"
    variables = answer["dynamic_variables"]
    assert variables["caller_known"] is True and variables["memory_count"] == 2
    lines = variables["memory_context"].splitlines()
    assert lines[0].startswith("- I prefer email over phone calls (")
    assert any("12 Elm Street" in line for line in lines)
    assert "Someone else" not in variables["memory_context"]
    assert all(isinstance(value, str | int | bool) for value in variables.values())


def test_context_is_cut_to_the_budget_in_whole_lines(client, settings):
    settings.INITIATION_CONTEXT_MAX_CHARS = 120
    user_id = start_call(client).json()["user_id"]
    for index in range(6):
        create_memory(default_owner(user_id), NewMemory(f"Fact number {index} about the caller's garden and roses"))
    context = start_call(client).json()["dynamic_variables"]["memory_context"]
    assert 0 < len(context) <= 120
    assert all(line.startswith("- Fact number") and line.endswith(")") for line in context.splitlines())


def test_uncached_prewarm_queries_are_skipped_not_embedded_inline(client, fake_openai, background_prewarms):
    user_id = start_call(client).json()["user_id"]
    create_memory(default_owner(user_id), NewMemory("I prefer email over phone calls"))
    before = len(fake_openai.embedding_requests)
    answer = start_call(client).json()
    assert len(fake_openai.embedding_requests) == before
    assert "I prefer email" in answer["dynamic_variables"]["memory_context"]  # from the salient memories
    assert background_prewarms, "a background prewarm is started for next time"


def test_web_call_with_an_explicit_user_id(client):
    create_memory(default_owner("web-user-7"), NewMemory("I am learning Portuguese"))
    answer = start_call(client, {"user_id": "web-user-7", "agent_id": "agent_x"}).json()
    assert answer["user_id"] == "web-user-7"
    assert answer["dynamic_variables"]["caller_known"] is True
    assert "Portuguese" in answer["dynamic_variables"]["memory_context"]


@pytest.mark.parametrize(
    "body", [{}, {"caller_id": None}, {"caller_id": "sip:anonymous@example.com"}, {"call_id": "x"}]
)
def test_calls_without_a_usable_identity_get_defaults(client, body):
    answer = start_call(client, body).json()
    assert answer == {
        "type": "conversation_initiation_client_data",
        "dynamic_variables": {"user_id": "", "memory_context": "", "caller_known": False, "memory_count": 0},
    }


def test_lenient_parsing_of_bad_bodies(client):
    for raw in ("not json", "[1,2]", ""):
        response = start_call(client, raw=raw)
        assert response.status_code == 200
        assert response.json()["type"] == "conversation_initiation_client_data"


def test_internal_error_still_answers_200_with_defaults(client, monkeypatch, caplog):
    def broken(user_id):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(initiation, "query_memories_for_initiation", broken)
    response = start_call(client)
    assert response.status_code == 200
    assert response.json()["dynamic_variables"] == {
        "user_id": "",
        "memory_context": "",
        "caller_known": False,
        "memory_count": 0,
    }
    assert any("conversation initiation failed" in record.message for record in caplog.records)


def test_first_message_override_for_known_callers_behind_a_setting(client, settings):
    user_id = start_call(client).json()["user_id"]
    create_memory(default_owner(user_id), NewMemory("I prefer email over phone calls"))
    assert "conversation_config_override" not in start_call(client).json()
    settings.INITIATION_KNOWN_CALLER_FIRST_MESSAGE = "Welcome back! Last time: {memory_context}"
    override = start_call(client).json()["conversation_config_override"]
    assert override["agent"]["first_message"].startswith("Welcome back! Last time: - I prefer email")


def test_auth(client, settings):
    assert start_call(client, secret="wrong").status_code == 401
    assert start_call(client, secret="").status_code == 401
    settings.ELEVENLABS_INITIATION_SECRETS = []
    assert start_call(client).status_code == 503


def test_the_tool_maps_a_caller_number_to_the_same_user(client):
    user_id = start_call(client).json()["user_id"]
    create_memory(default_owner(user_id), NewMemory("I prefer email over phone calls"))
    response = client.post(
        TOOL_URL,
        data=json.dumps({"query": "contact preference", "system__caller_id": "+1 (612) 555-0100"}),
        content_type="application/json",
        headers={"X-Memory-Secret": TOOL_SECRET},
    )
    assert response.json()["memories"][0]["text"] == "I prefer email over phone calls"
