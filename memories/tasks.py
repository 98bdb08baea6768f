"""Background tasks (django-tasks): processing stored post-call events."""

from datetime import timedelta

from django.utils import timezone
from django_tasks import task

from memories.models import WebhookEvent


@task()
def process_webhook_event_task(event_id: int) -> str:
    from memories.ingestion import process_webhook_event

    return process_webhook_event(event_id)


def schedule_processing(event: WebhookEvent, delay_seconds: float = 0) -> None:
    """Queue the event's processing (in the caller's transaction: the queue row commits with the event)."""
    if delay_seconds > 0:
        process_webhook_event_task.using(run_after=timezone.now() + timedelta(seconds=delay_seconds)).enqueue(event.pk)
    else:
        process_webhook_event_task.enqueue(event.pk)


@task()
def build_user_index_task(user_id: str) -> str:
    """Build a heavy user's dedicated vector index (memories.user_indexes); returns the index's status."""
    from memories.user_indexes import build_user_index

    return build_user_index(user_id).status
