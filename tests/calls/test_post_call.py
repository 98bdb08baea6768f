"""POST /webhooks/elevenlabs/post-call: signatures, durable storage, idempotency, background processing."""

import json
import threading
import time
import tracemalloc
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import RequestFactory

from calls.models import CallerIdentity, WebhookEvent
from calls.views import post_call_webhook
from memories.models import Memory, MemoryLink
from memories.owners import default_owner
from memories.services import forget_user
from testkit.elevenlabs import NEXT_WEBHOOK_SECRET, POST_CALL_URL, encode, signed_headers, transcription_payload
from testkit.tasks import drain_task_queue

pytestmark = pytest.mark.django_db(transaction=True)
URL = POST_CALL_URL


@pytest.fixture(autouse=True)
def no_retry_delay(call_secrets, settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0


def post(client, body: bytes, headers: dict | None = None):
    headers = signed_headers(body) if headers is None else headers
    return client.post(URL, data=body, content_type="application/json", headers=headers)


def run_worker() -> str:
    return drain_task_queue()


def test_a_signed_transcription_is_stored_then_processed_into_memories(client):
    body = encode(transcription_payload())
    response = post(client, body)
    assert response.status_code == 200
    assert response.json()["status"] == "accepted"
    event = WebhookEvent.objects.get()
    assert (event.event_type, event.conversation_id, event.status) == (
        "post_call_transcription",
        "conv_01jz8k2m3n4p5q6r7s8t9v0w1x",
        "received",
    )
    assert event.body_bytes == len(body) and event.payload["data"]["agent_id"].startswith("agent_")
    assert Memory.objects.count() == 0, "nothing is extracted in the request"

    run_worker()
    event.refresh_from_db()
    assert event.status == "processed" and event.attempts == 1
    identity = CallerIdentity.objects.get(phone_number="+16125550100")
    assert event.user_id == identity.user_id
    memories = {memory.text: memory for memory in Memory.objects.filter(user_id=identity.user_id)}
    assert set(memories) == {
        "Hi, I was double charged on my March invoice and I'm pretty frustrated about it.",
        "I prefer email over phone calls for follow-ups.",
        "Call on 2026-11-18: The caller reported a duplicate charge on the March invoice; a refund was issued.",
        "preferred contact channel: email",
    }
    charged = memories["Hi, I was double charged on my March invoice and I'm pretty frustrated about it."]
    assert charged.source_conversation_id == "conv_01jz8k2m3n4p5q6r7s8t9v0w1x"
    assert charged.source_turns == [1]
    assert memories["I prefer email over phone calls for follow-ups."].source_turns == [5]
    assert (
        memories[
            "Call on 2026-11-18: The caller reported a duplicate charge on the March invoice; a refund was issued."
        ].sector
        == "episodic"
    )
    assert event.memories_created == 4
    # each memory is linked to the next two said in the call: (0,1) (0,2) (1,2) (1,3) (2,3)
    assert MemoryLink.objects.filter(reason="same_call", user_id=identity.user_id).count() == 5


def test_the_user_id_we_gave_at_initiation_wins_over_the_phone_number(client):
    post(client, encode(transcription_payload(user_id="usr_known123", phone="+16125550100")))
    run_worker()
    assert set(Memory.objects.values_list("user_id", flat=True)) == {"usr_known123"}


def test_web_call_without_phone_or_user_is_recorded_and_ignored(client):
    post(client, encode(transcription_payload(phone=None)))
    run_worker()
    event = WebhookEvent.objects.get()
    assert event.status == "ignored" and "no caller identity" in event.last_error
    assert Memory.objects.count() == 0


def test_the_same_event_twice_answers_200_and_changes_nothing(client):
    body = encode(transcription_payload())
    assert post(client, body).json()["status"] == "accepted"
    run_worker()
    before = list(Memory.objects.order_by("pk").values_list("pk", "text", "access_count"))
    repeat = post(client, body)
    assert repeat.status_code == 200 and repeat.json()["status"] == "duplicate"
    resent = encode({**transcription_payload(), "event_timestamp": int(time.time()) + 5})  # a retry, re-signed
    assert post(client, resent).json()["status"] == "duplicate"
    run_worker()
    assert WebhookEvent.objects.count() == 1
    assert list(Memory.objects.order_by("pk").values_list("pk", "text", "access_count")) == before


@pytest.mark.parametrize(
    ("make_headers", "reason"),
    [
        (lambda body: signed_headers(body, secret="not-the-secret"), "invalid signature"),
        (lambda body: signed_headers(body, timestamp=int(time.time()) - 31 * 60), "signature timestamp is too old"),
        (
            lambda body: signed_headers(body, timestamp=int(time.time()) + 31 * 60),
            "signature timestamp is in the future",
        ),
        (lambda body: signed_headers(body + b" "), "invalid signature"),
        (lambda body: {}, "missing ElevenLabs-Signature header"),
        (lambda body: {"ElevenLabs-Signature": "v0=abc"}, "malformed ElevenLabs-Signature header"),
        (lambda body: {"ElevenLabs-Signature": "t=notanumber,v0=abc"}, "malformed ElevenLabs-Signature header"),
        (lambda body: {"ElevenLabs-Signature": "garbage"}, "malformed ElevenLabs-Signature header"),
    ],
)
def test_bad_signatures_are_401_with_a_short_reason_and_store_nothing(client, make_headers, reason):
    body = encode(transcription_payload())
    response = post(client, body, headers=make_headers(body))
    assert response.status_code == 401
    assert response.json() == {"error": f"Rejected: {reason}."}
    assert WebhookEvent.objects.count() == 0


def test_a_tampered_body_is_rejected(client):
    body = encode(transcription_payload())
    headers = signed_headers(body)
    tampered = body.replace(b"double charged", b"triple charged")
    assert post(client, tampered, headers=headers).status_code == 401


def test_signature_within_the_tolerance_and_with_the_rotated_secret(client):
    body = encode(transcription_payload())
    assert post(client, body, signed_headers(body, timestamp=int(time.time()) - 29 * 60)).status_code == 200
    other = encode(transcription_payload(conversation_id="conv_second"))
    assert post(client, other, signed_headers(other, secret=NEXT_WEBHOOK_SECRET)).status_code == 200


def test_unconfigured_webhook_refuses(client, settings):
    settings.ELEVENLABS_WEBHOOK_SECRETS = []
    assert post(client, b"{}").status_code == 503


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"not json", "the body is not JSON"),
        (b"[1, 2]", "the body is not a JSON object"),
        (b'{"type": "post_call_transcription", "data": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested too deeply"),
    ],
)
def test_signed_but_unusable_is_quarantined_raw_and_answered_200_once(client, body, problem):
    """Retrying it would never help, and losing it is not allowed: it is kept raw for an operator."""
    first = post(client, body)
    assert first.status_code == 200 and first.json()["status"] == "quarantined"
    event = WebhookEvent.objects.get(pk=first.json()["event_id"])
    assert event.status == "quarantined" and bytes(event.raw_body) == body and problem in event.last_error
    again = post(client, body)
    assert again.status_code == 200 and again.json()["event_id"] == event.pk
    assert WebhookEvent.objects.count() == 1
    run_worker()
    event.refresh_from_db()
    assert event.status == "quarantined"


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        (
            {
                "type": "call_initiation_failure",
                "event_timestamp": 1795000000,
                "data": {
                    "agent_id": "agent_x",
                    "conversation_id": "conv_fail",
                    "failure_reason": "busy",
                    "metadata": None,
                },
            },
            "recorded",
        ),
        (
            {"type": "post_call_something_new", "event_timestamp": 1795000000, "data": {"conversation_id": "conv_new"}},
            "recorded",
        ),
        (
            {
                "type": "post_call_audio",
                "event_timestamp": 1795000000,
                "data": {"agent_id": "agent_x", "conversation_id": "conv_audio", "full_audio": "SUQzBAAAAAAA"},
            },
            "recorded",
        ),
    ],
)
def test_other_event_types_are_recorded_and_answered_200(client, payload, status):
    response = post(client, encode(payload))
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert (event.event_type, event.status) == (payload["type"], status)
    assert "full_audio" not in json.dumps(event.payload)
    run_worker()
    assert Memory.objects.count() == 0


def test_big_audio_is_streamed_not_held_in_memory_and_never_stored(client, settings):
    settings.POST_CALL_MAX_JSON_BYTES = 1024 * 1024
    audio = "QUJD" * (10 * 1024 * 1024)  # 40 MB of base64
    body = (
        '{"type":"post_call_audio","event_timestamp":1795000000,"data":{"agent_id":"agent_x",'
        f'"conversation_id":"conv_big_audio","full_audio":"{audio}"}}}}'
    ).encode()
    del audio
    request = RequestFactory().post(URL, data=body, content_type="application/json", headers=signed_headers(body))
    tracemalloc.start()  # measure the view alone: the request body was built before
    response = post_call_webhook(request)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert response.status_code == 200, response.content
    event = WebhookEvent.objects.get()
    assert (event.event_type, event.conversation_id, event.agent_id) == ("post_call_audio", "conv_big_audio", "agent_x")
    assert event.payload is None and event.body_bytes == len(body)
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB while receiving a {len(body) / 1e6:.0f} MB body"


def test_fifty_concurrent_events_give_exactly_the_expected_memories(client):
    bodies = [
        encode(
            transcription_payload(
                conversation_id=f"conv_{index:03d}",
                phone=f"+1612555{index:04d}",
                caller_lines=(f"My favourite number is {index} and I live in district {index}.",),
                summary=None,
                data_collection={},
            )
        )
        for index in range(50)
    ]
    if connection.vendor == "sqlite":
        connection.close()
    answers, barrier = [], threading.Barrier(10)

    def send(chunk):
        from django.db import connection as thread_connection
        from django.test import Client

        thread_client = Client()
        barrier.wait()
        for body in chunk:
            answers.append(post(thread_client, body).status_code)
        thread_connection.close()

    threads = [threading.Thread(target=send, args=(bodies[start::10],)) for start in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * 50
    assert WebhookEvent.objects.count() == 50
    run_worker()
    assert WebhookEvent.objects.filter(status="processed").count() == 50
    texts = sorted(Memory.objects.values_list("text", flat=True))
    assert texts == sorted(f"My favourite number is {i} and I live in district {i}." for i in range(50))
    assert Memory.objects.values("user_id").distinct().count() == 50
    for body in bodies[:10]:  # ElevenLabs retries: nothing changes
        assert post(client, body).json()["status"] == "duplicate"
    run_worker()
    assert Memory.objects.count() == 50


def test_transient_failures_retry_with_backoff_then_fail_and_can_be_replayed(client, settings, fake_openai):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    fake_openai.fail_next = [500] * 3
    post(client, encode(transcription_payload()))
    run_worker()
    event = WebhookEvent.objects.get()
    assert (event.status, event.attempts) == ("failed", 3)
    assert "HTTP 500" in event.last_error
    assert Memory.objects.count() == 0
    out = StringIO()
    call_command("replay_webhooks", stdout=out)
    assert "Queued 1 events" in out.getvalue()
    run_worker()
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("processed", 1)
    assert Memory.objects.count() == 4


def test_a_transient_failure_then_success(client, fake_openai):
    fake_openai.fail_next = [503]
    post(client, encode(transcription_payload()))
    run_worker()
    event = WebhookEvent.objects.get()
    assert (event.status, event.attempts) == ("processed", 2)


def test_forget_user_also_forgets_identities_and_events(client):
    post(client, encode(transcription_payload()))
    run_worker()
    user_id = CallerIdentity.objects.get().user_id
    counts = forget_user(default_owner(user_id))
    assert counts["caller_identities"] == 1 and counts["webhook_events"] == 1 and counts["memories"] == 4
    assert not Memory.objects.exists() and not WebhookEvent.objects.exists() and not CallerIdentity.objects.exists()


def test_forget_user_also_forgets_events_not_processed_yet(client):
    post(client, encode(transcription_payload(conversation_id="conv_processed")))
    run_worker()
    user_id = CallerIdentity.objects.get().user_id
    post(client, encode(transcription_payload(conversation_id="conv_by_phone")))  # not processed: no user id yet
    post(client, encode(transcription_payload(conversation_id="conv_by_id", phone=None, user_id=user_id)))
    post(client, encode(transcription_payload(conversation_id="conv_other", phone="+16125550199")))
    assert WebhookEvent.objects.filter(user_id="").count() == 2
    counts = forget_user(default_owner(user_id))
    assert counts["webhook_events"] == 3
    assert list(WebhookEvent.objects.values_list("conversation_id", flat=True)) == ["conv_other"]


def test_the_in_process_worker_processes_without_a_manual_step(client, settings):
    from core.worker import start_in_process_worker, stop_in_process_worker

    post(client, encode(transcription_payload()))
    if connection.vendor == "sqlite":
        connection.close()
    thread = start_in_process_worker()
    try:
        assert thread is not None and thread.is_alive()
        assert start_in_process_worker() is None, "one worker per process"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and WebhookEvent.objects.get().status != "processed":
            time.sleep(0.2)
        assert WebhookEvent.objects.get().status == "processed"
    finally:
        stop_in_process_worker()
    assert not thread.is_alive()


def test_chunked_audio_upload_through_gunicorn(live_gunicorn):
    """A real chunked upload (no Content-Length) of tens of MB, as ElevenLabs sends audio."""
    import http.client

    prefix = b'{"type":"post_call_audio","event_timestamp":1795000000,"data":{"agent_id":"agent_x",'
    prefix += b'"conversation_id":"conv_chunked","full_audio":"'
    chunk = b"QUJD" * (256 * 1024)  # 1 MB of base64
    suffix = b'"}}'
    total = 30
    body = prefix + chunk * total + suffix
    headers = {"Content-Type": "application/json", **signed_headers(body)}
    del body

    def chunks():
        yield prefix
        for _ in range(total):
            yield chunk
        yield suffix

    connection_ = http.client.HTTPConnection("127.0.0.1", live_gunicorn.port, timeout=60)
    connection_.request("POST", URL, body=chunks(), headers=headers, encode_chunked=True)
    response = connection_.getresponse()
    answer = json.loads(response.read())
    assert response.status == 200, answer
    assert answer["status"] == "accepted"
    event = WebhookEvent.objects.get(conversation_id="conv_chunked")
    assert event.event_type == "post_call_audio" and event.payload is None
    assert event.body_bytes == len(prefix) + total * len(chunk) + len(suffix)


def stranded(client, conversation: str, **fields) -> WebhookEvent:
    """A stored event left the way a crash leaves it: `fields` set, its queued task gone."""
    from django_tasks_db.models import DBTaskResult

    body = encode(transcription_payload(conversation_id=conversation))
    event = WebhookEvent.objects.get(pk=post(client, body).json()["event_id"])
    DBTaskResult.objects.all().delete()
    WebhookEvent.objects.filter(pk=event.pk).update(**fields)
    return event


def test_the_sweeper_retries_expired_claims_and_queues_events_that_lost_their_task(client):
    from datetime import timedelta

    from django.utils import timezone

    from calls.tasks import requeue_stranded, stranded_events

    long_ago = timezone.now() - timedelta(hours=1)
    crashed = stranded(client, "conv_crashed", status="processing", attempts=1, lease_expires_at=long_ago)
    lost = stranded(client, "conv_lost", next_attempt_at=long_ago)
    soon = timezone.now() + timedelta(minutes=5)
    stranded(client, "conv_fresh", status="processing", attempts=1, lease_expires_at=soon)  # its worker is on it
    found = stranded_events()
    assert [event.pk for event in found.expired] == [crashed.pk] and [event.pk for event in found.unqueued] == [lost.pk]
    assert requeue_stranded() == {"retried": 1, "failed": 0, "queued": 1}
    assert requeue_stranded() == {"retried": 0, "failed": 0, "queued": 0}, "a queued task is not queued twice"
    run_worker()
    statuses = dict(WebhookEvent.objects.values_list("conversation_id", "status"))
    assert statuses == {"conv_crashed": "processed", "conv_lost": "processed", "conv_fresh": "processing"}
    assert WebhookEvent.objects.get(pk=crashed.pk).attempts == 2


def test_an_expired_claim_on_the_last_attempt_fails_instead_of_looping(client, settings):
    from datetime import timedelta

    from django.utils import timezone

    from calls.tasks import requeue_stranded

    settings.WEBHOOK_MAX_ATTEMPTS = 2
    stranded(client, "conv_poison", status="processing", attempts=2, lease_expires_at=timezone.now() - timedelta(1))
    assert requeue_stranded()["failed"] == 1
    event = WebhookEvent.objects.get()
    assert event.status == "failed" and "lease expired" in event.last_error


def test_replay_stuck_finds_stranded_events_by_their_lease(client):
    from datetime import timedelta

    from django.utils import timezone

    stranded(client, "conv_stuck", status="processing", attempts=1, lease_expires_at=timezone.now() - timedelta(1))
    out = StringIO()
    call_command("replay_webhooks", "--stuck", "--dry-run", stdout=out)
    assert "would replay post_call_transcription conv_stuck (processing)" in out.getvalue()
    call_command("replay_webhooks", "--stuck", stdout=StringIO())
    run_worker()
    assert WebhookEvent.objects.get().status == "processed"
