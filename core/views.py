"""Prometheus text for every app's metrics (staff session or the metrics token)."""

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core import access
from core.metrics import metrics_registry


@require_GET
@access.require_secret(access.METRICS)
def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)
