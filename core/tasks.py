"""Housekeeping of the task queue itself (run by core.worker like every app's periodic jobs)."""

from datetime import timedelta

from django.conf import settings
from django.core.management import call_command
from django.db.models import Q
from django.utils import timezone
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from core.models import WorkerHeartbeat
from core.periodic import PeriodicJob

HEARTBEATS_KEPT = timedelta(days=7)


def fail_abandoned_tasks() -> int:
    """Mark failed the tasks left 'running' by a worker that is gone (no heartbeat for WORKER_STALE_SECONDS).

    django-tasks-db never claims a running task again; the work they did is owned by their apps (an event's
    lease brings it back), this only closes the books so the queue's state is true.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.WORKER_STALE_SECONDS)
    alive = set(WorkerHeartbeat.objects.filter(beat_at__gte=stale).values_list("worker_id", flat=True))
    abandoned = [
        task.id
        for task in DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING, started_at__lt=stale).only(
            "worker_ids"
        )
        if not (task.worker_ids and task.worker_ids[-1] in alive)
    ]
    WorkerHeartbeat.objects.filter(Q(beat_at__lt=now - HEARTBEATS_KEPT)).delete()
    return DBTaskResult.objects.filter(id__in=abandoned, status=TaskResultStatus.RUNNING).update(
        status=TaskResultStatus.FAILED,
        finished_at=now,
        exception_class_path="core.worker.WorkerGone",
        traceback="the worker running this task stopped beating (killed or lost)",
    )


def prune_task_results() -> None:
    """django-tasks-db's own pruning (its `prune_db_task_results` command): finished results of every queue
    older than TASK_RESULT_RETENTION_DAYS. Their arguments are ids, never user text."""
    call_command("prune_db_task_results", queue_name="*", min_age_days=settings.TASK_RESULT_RETENTION_DAYS, verbosity=0)


PERIODIC_JOBS = [
    PeriodicJob("fail tasks abandoned by dead workers", settings.WORKER_STALE_SECONDS, fail_abandoned_tasks),
    PeriodicJob("prune finished task results", settings.RETENTION_SWEEP_SECONDS, prune_task_results),
]
