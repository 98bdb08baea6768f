"""A caller's data from end to end: forgetting (command, cache), exporting, and retention of payloads."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from calls.models import CallerIdentity, WebhookEvent
from calls.retention import erase_old_payloads
from calls.tasks import PERIODIC_JOBS as CALL_JOBS
from core.tasks import PERIODIC_JOBS as CORE_JOBS
from core.tasks import prune_task_results
from embeddings.generation import cached_embeddings
from memories.models import Memory
from testkit.elevenlabs import POST_CALL_URL, encode, signed_headers, transcription_payload
from testkit.tasks import drain_task_queue
from tests.factories import make_staff

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = "+16125550100"


@pytest.fixture(autouse=True)
def configured(call_secrets):
    pass


def deliver(client, **payload) -> None:
    body = encode(transcription_payload(**payload))
    response = client.post(POST_CALL_URL, data=body, content_type="application/json", headers=signed_headers(body))
    assert response.status_code == 200


def a_caller_with_two_calls(client) -> str:
    deliver(client, conversation_id="conv_a")
    deliver(client, conversation_id="conv_b", caller_lines=("My dog Biscuit has a vet appointment on Friday.",))
    drain_task_queue()
    return CallerIdentity.objects.get(phone_number=PHONE).user_id


def test_forget_user_command_by_phone_asks_then_removes_everything_and_their_cached_vectors(client):
    user_id = a_caller_with_two_calls(client)
    deliver(client, conversation_id="conv_other", phone="+16125550199")
    drain_task_queue()
    texts = list(Memory.objects.filter(user_id=user_id).values_list("text", flat=True))
    assert texts and set(cached_embeddings(texts)) == set(texts)  # stored memories were embedded through the cache

    output = StringIO()
    with pytest.raises(CommandError, match="pass --yes"):
        call_command("forget_user", "--phone", "(612) 555-0100", stdout=output)
    assert f"User {user_id} in space default: {len(texts)} memories" in output.getvalue() and PHONE in output.getvalue()
    assert Memory.objects.filter(user_id=user_id).count() == len(texts)

    output = StringIO()
    call_command("forget_user", "--phone", "+1 612 555 0100", "--yes", stdout=output)
    report = output.getvalue()
    assert f"removed {len(texts)} memories" in report and "removed 2 webhook events" in report
    assert "removed 1 caller identities" in report and f"Forgot {user_id}." in report
    assert f"removed {len(set(texts))} cached embeddings" in report
    assert not Memory.objects.filter(user_id=user_id).exists()
    assert cached_embeddings(texts) == {}
    assert WebhookEvent.objects.get().conversation_id == "conv_other"  # someone else's call stays
    assert Memory.objects.exclude(user_id=user_id).exists()


def test_forget_user_command_refuses_what_it_cannot_resolve():
    with pytest.raises(CommandError, match="no caller has called from"):
        call_command("forget_user", "--phone", "+16125550111", "--yes")
    with pytest.raises(CommandError, match="is not a phone number"):
        call_command("forget_user", "--phone", "call me maybe", "--yes")
    with pytest.raises(CommandError):
        call_command("forget_user", "--yes")  # neither --user-id nor --phone


def test_export_holds_memories_with_provenance_identities_and_event_metadata_only(client):
    user_id = a_caller_with_two_calls(client)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=make_staff('op')).key}")
    response = api.get(f"/api/users/{user_id}/export")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="export-{user_id}.json"'
    document = response.json()
    assert document["user_id"] == user_id
    assert len(document["memories"]) == Memory.objects.filter(user_id=user_id).count()
    dog = next(memory for memory in document["memories"] if "Biscuit" in memory["text"])
    assert dog["kind"] == "utterance" and dog["source_conversation_id"] == "conv_b" and dog["source_turns"]
    assert dog["occurred_at"] and "embedding" not in dog
    assert [identity["phone_number"] for identity in document["caller_identities"]] == [PHONE]
    assert [event["conversation_id"] for event in document["webhook_events"]] == ["conv_a", "conv_b"]
    assert all(event["status"] == "processed" for event in document["webhook_events"])
    serialized = json.dumps(document["webhook_events"])
    assert "payload" not in document["webhook_events"][0] and "Biscuit" not in serialized
    assert api.get("/api/users/nobody/export").json()["memories"] == []
    assert APIClient().get(f"/api/users/{user_id}/export").status_code == 401


def test_retention_erases_old_finished_payloads_keeping_metadata_failed_and_recent(client, settings):
    a_caller_with_two_calls(client)
    old = timezone.now() - timedelta(days=40)
    WebhookEvent.objects.filter(conversation_id="conv_a").update(processed_at=old)
    failed = WebhookEvent.objects.create(
        event_type="post_call_transcription",
        conversation_id="conv_failed",
        dedupe_key="post_call_transcription:conv_failed",
        status="failed",
        received_at=old,
        body_sha256="0" * 64,
        payload={"type": "post_call_transcription", "data": {}},
    )
    settings.WEBHOOK_PAYLOAD_RETENTION_DAYS = 30
    output = StringIO()
    call_command("erase_old_payloads", "--dry-run", stdout=output)
    assert "Would erase the payloads of 1 events" in output.getvalue()
    assert WebhookEvent.objects.get(conversation_id="conv_a").payload is not None

    call_command("erase_old_payloads", stdout=StringIO())
    erased = WebhookEvent.objects.get(conversation_id="conv_a")
    assert erased.payload is None and erased.payload_erased_at is not None
    assert erased.status == "processed" and erased.conversation_id == "conv_a" and len(erased.body_sha256) == 64
    assert erased.memories_created > 0
    assert WebhookEvent.objects.get(conversation_id="conv_b").payload is not None  # 0 days old
    failed.refresh_from_db()
    assert failed.payload is not None  # an operator still has to look at it
    assert erase_old_payloads() == 0  # idempotent

    settings.WEBHOOK_PAYLOAD_RETENTION_DAYS = 0
    assert erase_old_payloads(days=None) == 0
    assert any(job.function is erase_old_payloads for job in CALL_JOBS)


def test_finished_task_results_are_pruned_after_their_retention(client, settings):
    a_caller_with_two_calls(client)
    finished = DBTaskResult.objects.filter(status=TaskResultStatus.SUCCESSFUL)
    assert finished.count() >= 2
    settings.TASK_RESULT_RETENTION_DAYS = 14
    prune_task_results()
    assert finished.count() >= 2  # fresh
    finished.update(finished_at=timezone.now() - timedelta(days=15))
    prune_task_results()
    assert not finished.exists()
    assert any(job.function is prune_task_results for job in CORE_JOBS)
