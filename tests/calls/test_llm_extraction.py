"""The LLM extraction path, against a local fake OpenAI server through the real client."""

import pytest

from calls.models import WebhookEvent
from memories.models import Memory
from memories.owners import default_owner
from memories.search import vector_search
from memories.services import NewMemory, create_memory
from testkit.elevenlabs import POST_CALL_URL, encode, signed_headers, transcription_payload
from testkit.tasks import drain_task_queue

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def llm(settings, fake_openai, call_secrets):
    settings.EXTRACTION_LLM_MODEL = "gpt-4o-mini"
    return fake_openai


def deliver(client, payload):
    body = encode(payload)
    client.post(POST_CALL_URL, data=body, content_type="application/json", headers=signed_headers(body))
    drain_task_queue()


def test_facts_are_added_reinforced_and_superseded(client, llm):
    old_address = create_memory(default_owner("usr_1"), NewMemory("Lives at 12 Elm Street")).memory
    likes_email = create_memory(default_owner("usr_1"), NewMemory("Prefers email over phone calls")).memory
    other_user = create_memory(default_owner("usr_2"), NewMemory("Lives at 99 Oak Avenue")).memory
    llm.chat_responses.append(
        {
            "facts": [
                {
                    "text": "Moved to 5 Pine Road in October",
                    "sector": "episodic",
                    "importance": 0.8,
                    "turns": [1],
                    "action": "supersede",
                    "target_id": old_address.pk,
                },
                {
                    "text": "Prefers email over phone calls",
                    "sector": "semantic",
                    "importance": 0.6,
                    "turns": [5],
                    "action": "reinforce",
                    "target_id": likes_email.pk,
                },
                {
                    "text": "Was double charged on the March invoice",
                    "sector": "episodic",
                    "importance": 0.7,
                    "turns": [1],
                    "action": "add",
                    "target_id": None,
                },
                {
                    "text": "Wants to hijack another user's memory",
                    "sector": "semantic",
                    "importance": 0.5,
                    "turns": [],
                    "action": "supersede",
                    "target_id": other_user.pk,
                },
            ]
        }
    )
    deliver(client, transcription_payload(user_id="usr_1"))
    event = WebhookEvent.objects.get()
    assert event.status == "processed", event.last_error
    chat = [request for request in llm.requests if request["path"].endswith("/chat/completions")]
    assert len(chat) == 1
    body = chat[0]["body"]
    assert body["model"] == "gpt-4o-mini"
    assert body["response_format"]["type"] == "json_schema"
    assert f"#{old_address.pk}: Lives at 12 Elm Street" in body["messages"][1]["content"]
    assert "99 Oak Avenue" not in body["messages"][1]["content"], "only this user's memories are shown"
    assert "[1] caller: Hi, I was double charged" in body["messages"][1]["content"]

    old_address.refresh_from_db()
    moved = Memory.objects.get(text="Moved to 5 Pine Road in October")
    assert old_address.superseded_by_id == moved.pk and old_address.valid_until is not None
    assert moved.source_conversation_id == "conv_01jz8k2m3n4p5q6r7s8t9v0w1x" and moved.source_turns == [1]
    assert moved.salience == pytest.approx(0.8)
    likes_email.refresh_from_db()
    assert likes_email.access_count == 1
    assert Memory.objects.filter(text="Prefers email over phone calls").count() == 1
    other_user.refresh_from_db()
    assert other_user.superseded_by_id is None, "a target outside the shown memories is never touched"
    assert Memory.objects.get(text="Wants to hijack another user's memory").user_id == "usr_1"
    current = {item.memory.text for item in vector_search(moved.embedding, default_owner("usr_1"), limit=10)}
    assert "Lives at 12 Elm Street" not in current and "Moved to 5 Pine Road in October" in current


def test_llm_outage_is_retried(client, llm, settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0
    llm.chat_responses.append(
        {
            "facts": [
                {
                    "text": "Likes tea",
                    "sector": "semantic",
                    "importance": 0.5,
                    "turns": [1],
                    "action": "add",
                    "target_id": None,
                }
            ]
        }
    )
    original = llm._answer_chat
    calls = []

    def flaky(body):
        calls.append(body)
        if len(calls) <= 3:  # the SDK retries twice inside one attempt; fail all three
            return 500, {"error": {"message": "overloaded"}}
        return original(body)

    llm._answer_chat = flaky
    deliver(client, transcription_payload(user_id="usr_1"))
    event = WebhookEvent.objects.get()
    assert event.status == "processed" and event.attempts == 2
    assert Memory.objects.filter(text="Likes tea").exists()
