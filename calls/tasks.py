"""Background work of the call integration; the only module of this app that queues anything.

A stored post-call transcription is processed by the task worker (calls.ingestion), never in the webhook's
request: ElevenLabs wants its 200 fast, and extraction may wait on a provider or an LLM. What processing
comes to decides what is queued next: a retry with exponential backoff after a transient failure, and a
dedicated vector index for a user who has just become heavy (memories.tasks).

Nothing acknowledged may be stranded, so the worker also sweeps (PERIODIC_JOBS): an event whose claim's
lease ran out (its worker died or lost the database) is retried, and an event that is due but has no task
waiting for it (a crash between storing a status and queueing its task) gets one.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_tasks import task
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from calls.ingestion import process_webhook_event
from calls.models import WebhookEvent
from calls.payloads import EventType
from calls.retention import erase_old_payloads
from core.daily import COUNT_EVERY_SECONDS, counted_between, record_daily_counts
from core.periodic import PeriodicJob
from memories.tasks import schedule_user_index_if_needed

logger = logging.getLogger(__name__)


@task()
def process_webhook_event_task(event_id: int) -> str:
    """Process a stored event and queue what its outcome calls for; returns the event's status."""
    outcome = process_webhook_event(event_id)
    if outcome.retry_in_seconds is not None:
        queue_processing_by_id(event_id, delay_seconds=outcome.retry_in_seconds)
    if outcome.memories_created and outcome.owner is not None:
        schedule_user_index_if_needed(outcome.owner)
    return outcome.status


PROCESSING_TASK = process_webhook_event_task.module_path


def queue_processing(event: WebhookEvent, delay_seconds: float = 0) -> None:
    """Queue the event's processing (in the caller's transaction: the queue row commits with the event)."""
    queue_processing_by_id(event.pk, delay_seconds)


def queue_processing_by_id(event_id: int, delay_seconds: float = 0) -> None:
    if delay_seconds > 0:
        process_webhook_event_task.using(run_after=timezone.now() + timedelta(seconds=delay_seconds)).enqueue(event_id)
    else:
        process_webhook_event_task.enqueue(event_id)


def replay_event(event: WebhookEvent) -> bool:
    """Queue a failed (or stranded) transcription again, with a fresh attempt budget; False if not replayable."""
    if event.event_type != EventType.TRANSCRIPTION or not event.payload:
        return False
    with transaction.atomic():
        WebhookEvent.objects.filter(pk=event.pk).update(
            status=WebhookEvent.Status.RECEIVED,
            attempts=0,
            last_error="",
            next_attempt_at=timezone.now(),
            lease_expires_at=None,
            claim_token="",
        )
        queue_processing(event)
    return True


@dataclass
class Stranded:
    expired: list[WebhookEvent]  # processing, but the claim's lease ran out
    unqueued: list[WebhookEvent]  # due for a while, and no task is waiting for them


def stranded_events(now=None) -> Stranded:
    """Events the worker will not get to on its own: claims whose lease ran out, and events due for longer than
    WEBHOOK_REQUEUE_AFTER_SECONDS with no queued or running task."""
    now = now or timezone.now()
    expired = list(WebhookEvent.objects.filter(status=WebhookEvent.Status.PROCESSING, lease_expires_at__lte=now))
    overdue = now - timedelta(seconds=settings.WEBHOOK_REQUEUE_AFTER_SECONDS)
    due = list(
        WebhookEvent.objects.filter(
            Q(next_attempt_at__lte=overdue) | Q(next_attempt_at__isnull=True), status__in=WebhookEvent.WAITING
        )
    )
    if not due:
        return Stranded(expired=expired, unqueued=[])
    waiting = pending_event_ids()
    return Stranded(expired=expired, unqueued=[event for event in due if event.pk not in waiting])


def pending_event_ids() -> set[int]:
    """Events with a processing task queued, or running for less than a lease."""
    recent = timezone.now() - timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)
    rows = DBTaskResult.objects.filter(task_path=PROCESSING_TASK).filter(
        Q(status=TaskResultStatus.READY) | Q(status=TaskResultStatus.RUNNING, started_at__gte=recent)
    )
    ids = set()
    for args_kwargs in rows.values_list("args_kwargs", flat=True):
        args = (args_kwargs or {}).get("args") or []
        if args and isinstance(args[0], int):
            ids.add(args[0])
    return ids


def requeue_stranded() -> dict[str, int]:
    """The sweeper: retry expired claims (or fail them after the last attempt) and queue unqueued events."""
    stranded = stranded_events()
    counts = {"retried": 0, "failed": 0, "queued": 0}
    now = timezone.now()
    for event in stranded.expired:
        exhausted = event.attempts >= settings.WEBHOOK_MAX_ATTEMPTS
        status = WebhookEvent.Status.FAILED if exhausted else WebhookEvent.Status.RETRYING
        with transaction.atomic():
            taken = WebhookEvent.objects.filter(
                pk=event.pk, status=WebhookEvent.Status.PROCESSING, claim_token=event.claim_token
            ).update(
                status=status,
                claim_token="",
                lease_expires_at=None,
                next_attempt_at=now,
                last_error=f"the worker processing it stopped (lease expired after attempt {event.attempts})",
            )
            if taken and not exhausted:
                queue_processing(event)
        counts["failed" if exhausted else "retried"] += taken
    for event in stranded.unqueued:
        with transaction.atomic():
            touched = WebhookEvent.objects.filter(pk=event.pk, status__in=WebhookEvent.WAITING).update(
                next_attempt_at=now
            )
            if touched:
                queue_processing(event)
        counts["queued"] += touched
    if any(counts.values()):
        logger.warning("stranded post-call events taken up again", extra=counts)
    return counts


def count_calls_per_day() -> None:
    """Finished calls received today and yesterday (post-call transcriptions), for the admin index's chart."""
    calls = WebhookEvent.objects.filter(event_type=EventType.TRANSCRIPTION)
    record_daily_counts(CALLS_PER_DAY, counted_between(calls, "received_at"))


CALLS_PER_DAY = "calls received"
PERIODIC_JOBS = [
    PeriodicJob("re-queue stranded post-call events", settings.WEBHOOK_SWEEP_SECONDS, requeue_stranded),
    PeriodicJob("count calls per day", COUNT_EVERY_SECONDS, count_calls_per_day),
    PeriodicJob("erase post-call payloads past retention", settings.RETENTION_SWEEP_SECONDS, erase_old_payloads),
]
