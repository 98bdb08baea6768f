"""Prometheus metrics of the memory side, read from the database at scrape time (served by /metrics).

What an operator alerts on: post-call events waiting, retrying or failed (nothing accepted may be dropped
silently), and heavy users' dedicated vector indexes that failed to build.
"""

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from memories.models import UserVectorIndex, WebhookEvent


class MemoriesCollector(Collector):
    def collect(self):
        yield self.by_status(
            "memory_webhook_events",
            "Stored ElevenLabs webhook events, by processing status.",
            WebhookEvent,
        )
        yield self.by_status(
            "memory_user_vector_indexes",
            "Heavy users' dedicated HNSW indexes, by state (PostgreSQL).",
            UserVectorIndex,
        )

    @staticmethod
    def by_status(name: str, documentation: str, model) -> GaugeMetricFamily:
        counts = dict(model.objects.order_by().values_list("status").annotate(count=Count("pk")))
        family = GaugeMetricFamily(name, documentation, labels=["status"])
        for status in model.Status.values:  # every status, zeros included, so alerts need no absent()
            family.add_metric([status], counts.get(status, 0))
        return family
