"""Background work of the call integration; the only module of this app that queues anything.

A stored post-call transcription is processed by the task worker (calls.ingestion), never in the webhook's
request: ElevenLabs wants its 200 fast, and extraction may wait on a provider or an LLM. What processing
comes to decides what is queued next: a retry with exponential backoff after a transient failure, and a
dedicated vector index for a user who has just become heavy (memories.tasks).
"""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django_tasks import task

from calls.ingestion import process_webhook_event
from calls.models import WebhookEvent
from calls.payloads import EventType
from memories.tasks import schedule_user_index_if_needed


@task()
def process_webhook_event_task(event_id: int) -> str:
    """Process a stored event and queue what its outcome calls for; returns the event's status."""
    outcome = process_webhook_event(event_id)
    if outcome.retry_in_seconds is not None:
        queue_processing_by_id(event_id, delay_seconds=outcome.retry_in_seconds)
    if outcome.memories_created:
        schedule_user_index_if_needed(outcome.user_id)
    return outcome.status


def queue_processing(event: WebhookEvent, delay_seconds: float = 0) -> None:
    """Queue the event's processing (in the caller's transaction: the queue row commits with the event)."""
    queue_processing_by_id(event.pk, delay_seconds)


def queue_processing_by_id(event_id: int, delay_seconds: float = 0) -> None:
    if delay_seconds > 0:
        process_webhook_event_task.using(run_after=timezone.now() + timedelta(seconds=delay_seconds)).enqueue(event_id)
    else:
        process_webhook_event_task.enqueue(event_id)


def replay_event(event: WebhookEvent) -> bool:
    """Queue a failed (or stuck) transcription again, with a fresh attempt budget; False if not replayable."""
    if event.event_type != EventType.TRANSCRIPTION or not event.payload:
        return False
    with transaction.atomic():
        WebhookEvent.objects.filter(pk=event.pk).update(status=WebhookEvent.Status.RECEIVED, attempts=0, last_error="")
        queue_processing(event)
    return True
