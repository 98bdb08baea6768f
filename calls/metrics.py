"""Prometheus metrics of the call integration, read from the database at scrape time (served by /metrics).

What an operator alerts on: post-call events waiting, retrying or failed (nothing accepted may be dropped
silently).
"""

from prometheus_client.registry import Collector

from calls.models import WebhookEvent
from core.metrics import rows_by_status


class CallsCollector(Collector):
    def collect(self):
        yield rows_by_status(
            "memory_webhook_events", "Stored ElevenLabs webhook events, by processing status.", WebhookEvent
        )


COLLECTORS = [CallsCollector]
