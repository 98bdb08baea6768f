"""POST /tools/memory-remember: the agent stores a fact now, and the next query of the same call finds it."""

import json
import time

import pytest

from calls.models import CallerIdentity
from memories.models import Memory
from memories.owners import default_owner
from memories.services import NewMemory, create_memory
from testkit.elevenlabs import REMEMBER_URL, TOOL_SECRET, TOOL_URL

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("call_secrets")]


def post(client, url, body, secret=TOOL_SECRET, raw=None):
    data = raw if raw is not None else json.dumps(body)
    headers = {"X-Memory-Secret": secret} if secret else {}
    return client.post(url, data=data, content_type="application/json", headers=headers)


def test_a_remembered_fact_is_found_by_the_next_query_of_the_call(client):
    create_memory(default_owner("alice"), NewMemory("I prefer email over phone calls"))
    body = {
        "text": "My new address is 12 Rue de la Paix, Lyon",
        "user_id": "alice",
        "system__conversation_id": "conv_9",
    }
    response = post(client, REMEMBER_URL, body)
    assert response.status_code == 200
    answer = response.json()
    assert answer["remembered"] is True and answer["already_known"] is False
    memory = Memory.objects.get(pk=answer["id"])
    assert (memory.user_id, memory.kind, memory.source_conversation_id) == ("alice", "note", "conv_9")
    assert memory.metadata == {"source": "remember tool"} and memory.embedding_model

    found = post(client, TOOL_URL, {"query": "what is her address now?", "user_id": "alice"}).json()
    assert found["memories"][0]["id"] == memory.pk  # searchable at once: vectors and words


def test_saying_it_again_reinforces_instead_of_duplicating(client):
    first = post(client, REMEMBER_URL, {"text": "Allergic to peanuts", "user_id": "alice"}).json()
    again = post(client, REMEMBER_URL, {"text": "allergic to  PEANUTS", "user_id": "alice"}).json()
    assert again == {**first, "already_known": True}
    assert Memory.objects.filter(user_id="alice").count() == 1
    assert Memory.objects.get().access_count == 1


def test_by_phone_number_it_reaches_the_callers_user_even_a_new_one(client):
    CallerIdentity.objects.create(phone_number="+16125550100", user_id="usr_known")
    post(client, REMEMBER_URL, {"text": "Has two cats", "system__caller_id": "(612) 555-0100"})
    assert Memory.objects.get(text="Has two cats").user_id == "usr_known"

    post(client, REMEMBER_URL, {"text": "Calls from the office", "system__caller_id": "+1 612 555 0177"})
    identity = CallerIdentity.objects.get(phone_number="+16125550177")
    assert Memory.objects.get(text="Calls from the office").user_id == identity.user_id != "+16125550177"
    assert identity.calls == 0  # the call itself is counted by initiation / post-call, not by a tool


def test_never_stores_for_another_user_and_only_with_the_secret(client):
    assert post(client, REMEMBER_URL, {"text": "x y z", "user_id": "alice"}, secret="wrong").status_code == 401
    assert post(client, REMEMBER_URL, {"text": "x y z", "user_id": "alice"}, secret=None).status_code == 401
    assert not Memory.objects.exists()


@pytest.mark.parametrize(
    ("body", "raw", "message"),
    [
        ({"user_id": "alice"}, None, "Bad request: text: This field is required."),
        ({"text": "   ", "user_id": "alice"}, None, "Bad request: text: This field may not be blank."),
        ({"text": "hello"}, None, "Bad request: user_id: This field is required."),
        ({"text": "hello", "system__caller_id": "not a number"}, None, "Bad request: user_id: This field is required."),
        ({"text": "hello", "system__caller_id": 5}, None, "Bad request: system__caller_id: must be a string."),
        ({"text": 12, "user_id": "alice"}, None, "Bad request: text: must be a string"),
        (
            {"text": "hi", "user_id": "alice", "system__conversation_id": {}},
            None,
            "Bad request: system__conversation_id",
        ),
        ({"text": "hi", "user_id": "alice", "sector": "gossip"}, None, 'Bad request: sector: "gossip" is not a valid'),
        ({"text": "x" * 5000, "user_id": "alice"}, None, "Bad request: text: Ensure this field has no more than"),
        (None, b"[1, 2]", "Bad request: the body must be a JSON object."),
        (None, b"{not json", "Bad request: the body must be JSON"),
    ],
)
def test_bad_input_gets_a_short_readable_400_and_stores_nothing(client, body, raw, message):
    response = post(client, REMEMBER_URL, body, raw=raw)
    assert response.status_code == 400
    assert response.json()["error"].startswith(message), response.json()
    assert not Memory.objects.exists() and not CallerIdentity.objects.exists()


def test_a_slow_provider_gets_a_503_sentence_within_the_budget_and_stores_nothing(client, settings, fake_openai):
    settings.TOOL_TIME_BUDGET_SECONDS = 0.5
    fake_openai.delay = 3.0
    started = time.monotonic()
    response = post(client, REMEMBER_URL, {"text": "Prefers mornings", "user_id": "alice"})
    assert time.monotonic() - started < 1.5
    assert response.status_code == 503 and "transcript will still be remembered" in response.json()["error"]
    assert not Memory.objects.exists()
    fake_openai.delay = 0
    assert post(client, REMEMBER_URL, {"text": "Prefers mornings", "user_id": "alice"}).status_code == 200
