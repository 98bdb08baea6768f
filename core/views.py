"""Prometheus text for every app's metrics (staff session or the metrics token), and the JSON 404."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from django.views.defaults import page_not_found
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core import access
from core.metrics import metrics_registry
from core.requests import collect_into


@require_GET
@access.require_secret(access.METRICS)
def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    registry = metrics_registry()
    collect_into(registry)
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


# Paths whose clients are programs (the operator API, ElevenLabs, Prometheus): they get JSON, never an HTML page.
JSON_PATH_PREFIXES = ("/api/", "/tools/", "/webhooks/", "/metrics")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404: JSON for the API's clients, Django's page for people."""
    if request.path.startswith(JSON_PATH_PREFIXES):
        return JsonResponse({"detail": f"Not found: {request.path[:200]}"}, status=404)
    return page_not_found(request, exception)
