"""Metrics endpoints: JSON statistics and Prometheus text, for staff sessions or the metrics token."""

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from embeddings.metrics import metrics_registry
from embeddings.statistics import collect_statistics


def _authorized(request: HttpRequest) -> bool:
    if request.user.is_authenticated and request.user.is_staff:
        return True
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    return bool(token) and header.startswith("Bearer ") and hmac.compare_digest(header[7:].strip(), token)


def _denied() -> JsonResponse:
    return JsonResponse({"error": "metrics need a staff login or 'Authorization: Bearer <METRICS_TOKEN>'"}, status=401)


@require_GET
def embedding_cache_statistics(request: HttpRequest) -> HttpResponse:
    if not _authorized(request):
        return _denied()
    stats = collect_statistics()
    return JsonResponse(stats.as_dict(), status=200 if stats.available else 503)


@require_GET
def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    if not _authorized(request):
        return _denied()
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)
