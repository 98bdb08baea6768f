"""The embedding cache's statistics as JSON, for staff sessions or the metrics token."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from core import access
from embeddings.statistics import collect_statistics


@require_GET
@access.require_secret(access.METRICS)
def embedding_cache_statistics(request: HttpRequest) -> HttpResponse:
    stats = collect_statistics()
    return JsonResponse(stats.as_dict(), status=200 if stats.available else 503)
