"""/metrics: one Prometheus registry gathering the collectors every app lists in `<app>.metrics.COLLECTORS`.

Collectors read shared state (the cache's counters, database tables) at scrape time, so every gunicorn worker
serves the same, complete figures: no multiprocess directory to manage. Found by name, like the periodic jobs,
so no app imports this module.
"""

import importlib

from django.apps import apps
from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import CollectorRegistry

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
