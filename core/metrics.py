"""/metrics: one Prometheus registry gathering the collectors every app lists in `<app>.metrics.COLLECTORS`.

Collectors read shared state (the cache's counters, database tables) at scrape time, so every gunicorn worker
serves the same, complete figures: no multiprocess directory to manage. Found by name, like the periodic jobs,
so no app imports this module.
"""

import importlib
from datetime import timedelta

from django.apps import apps
from django.conf import settings
from django.db.models import Count
from django.utils import timezone
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from core.models import WorkerHeartbeat

COLLECTORS_ATTRIBUTE = "COLLECTORS"


def app_collectors() -> list[type]:
    collectors = []
    for config in apps.get_app_configs():
        try:
            module = importlib.import_module(f"{config.name}.metrics")
        except ModuleNotFoundError as error:
            if error.name != f"{config.name}.metrics":
                raise
            continue
        collectors.extend(getattr(module, COLLECTORS_ATTRIBUTE, ()))
    return collectors


def metrics_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    for collector in app_collectors():
        registry.register(collector())
    return registry


def rows_by_status(name: str, documentation: str, model) -> GaugeMetricFamily:
    """A gauge of `model`'s rows per value of its `Status` choices; every status is present, zeros included, so
    alert rules need no `absent()`."""
    counts = dict(model.objects.order_by().values_list("status").annotate(count=Count("pk")))
    family = GaugeMetricFamily(name, documentation, labels=["status"])
    for status in model.Status.values:
        family.add_metric([status], counts.get(status, 0))
    return family


class WorkersCollector(Collector):
    """Task workers with a fresh heartbeat, by state, and the task queue by status."""

    def collect(self):
        stale = timezone.now() - timedelta(seconds=settings.WORKER_STALE_SECONDS)
        alive = dict(
            WorkerHeartbeat.objects.filter(beat_at__gte=stale)
            .order_by()
            .values_list("state")
            .annotate(count=Count("pk"))
        )
        workers = GaugeMetricFamily(
            "task_workers", "Task workers that beat within WORKER_STALE_SECONDS.", labels=["state"]
        )
        for state in WorkerHeartbeat.State.values:
            workers.add_metric([state], alive.get(state, 0))
        yield workers
        latest = WorkerHeartbeat.objects.exclude(state=WorkerHeartbeat.State.STOPPED).order_by("-beat_at").first()
        age = (timezone.now() - latest.beat_at).total_seconds() if latest else float("inf")
        yield GaugeMetricFamily(
            "task_worker_last_heartbeat_age_seconds", "Seconds since any task worker last beat.", round(age, 3)
        )
        queued = dict(DBTaskResult.objects.order_by().values_list("status").annotate(count=Count("pk")))
        tasks = GaugeMetricFamily("background_tasks", "Background task results, by status.", labels=["status"])
        for status in (TaskResultStatus.READY, TaskResultStatus.RUNNING, TaskResultStatus.FAILED):
            tasks.add_metric([status], queued.get(status, 0))
        yield tasks


COLLECTORS = [WorkersCollector]
