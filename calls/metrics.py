"""Prometheus metrics of the call integration, read from the database at scrape time (served by /metrics).

What an operator alerts on: post-call events failed, or not processed long after they arrived (nothing
accepted may be dropped or stranded silently).
"""

from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from calls.models import WebhookEvent
from core.metrics import rows_by_status


class CallsCollector(Collector):
    def collect(self):
        yield rows_by_status(
            "memory_webhook_events", "Stored ElevenLabs webhook events, by processing status.", WebhookEvent
        )
        oldest = (
            WebhookEvent.objects.filter(status__in=WebhookEvent.UNFINISHED)
            .order_by("received_at")
            .values_list("received_at", flat=True)
            .first()
        )
        yield GaugeMetricFamily(
            "memory_webhook_oldest_unfinished_seconds",
            "Age of the oldest post-call event not yet processed (received, retrying or processing); 0 when none.",
            round((timezone.now() - oldest).total_seconds(), 3) if oldest else 0.0,
        )


COLLECTORS = [CallsCollector]
