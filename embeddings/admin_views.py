"""The admin's "Embedding cache" page: statistics, alerts, prewarm now, and clear (behind a permission)."""

import time
from datetime import timedelta

from django.contrib import messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from core.charts import bar_chart
from embeddings.clearing import clear_embedding_cache
from embeddings.errors import EmbeddingError
from embeddings.models import PrewarmQuery
from embeddings.prewarm import prewarm_queries
from embeddings.statistics import (
    EVICTIONS_PER_MINUTE_ALERT_ABOVE,
    HIT_RATE_ALERT_BELOW,
    cache_alerts,
    cache_history,
    collect_statistics,
)

CLEAR_PERMISSION = "embeddings.clear_embedding_cache"


def cache_page(request: HttpRequest, site) -> HttpResponse:
    started = time.perf_counter()
    stats = collect_statistics()
    alerts = cache_alerts(stats)
    context = {
        **site.each_context(request),
        "title": "Embedding cache",
        "stats": stats,
        "alerts": alerts,
        "hit_rate_threshold": HIT_RATE_ALERT_BELOW,
        "evictions_threshold": EVICTIONS_PER_MINUTE_ALERT_ABOVE,
        "can_clear": request.user.has_perm(CLEAR_PERMISSION),
        "prewarm_enabled": PrewarmQuery.objects.filter(enabled=True).count(),
        "mean_latency_ms": round(1000 * stats.latency_sum_seconds / stats.latency_count, 1)
        if stats.latency_count
        else None,
    }
    context["charts"] = history_charts()
    context["elapsed_ms"] = round(1000 * (time.perf_counter() - started), 1)
    return TemplateResponse(request, "admin/embeddings/cache.html", context)


CHART_WINDOWS = (("24h", "last 24 hours", timedelta(days=1), 24), ("7d", "last 7 days", timedelta(days=7), 28))


def history_charts() -> list[dict]:
    """The cache over the last day (hourly) and week (6-hourly), from the worker's samples, as SVG charts."""
    charts = []
    for key, title, window, buckets in CHART_WINDOWS:
        history = cache_history(window, buckets)
        charts.append(
            {
                "title": title,
                "charts": [
                    bar_chart(f"chart-hit-rate-{key}", f"Hit rate, {title}", history.hit_rate, percent=True),
                    bar_chart(f"chart-provider-calls-{key}", f"Provider calls, {title}", history.provider_calls),
                    bar_chart(f"chart-evictions-{key}", f"Evictions, {title}", history.evictions),
                ],
            }
        )
    return charts


def clear_cache(request: HttpRequest, site) -> HttpResponse:
    """GET: a confirmation page; POST (with CSRF): clear, log who cleared how many, back to the page."""
    if not request.user.has_perm(CLEAR_PERMISSION):
        raise PermissionDenied
    if request.method != "POST":
        stats = collect_statistics()
        context = {**site.each_context(request), "title": "Clear the embedding cache?", "stats": stats}
        return TemplateResponse(request, "admin/embeddings/clear_confirm.html", context)
    try:
        removed = clear_embedding_cache(actor=request.user.get_username())
    except Exception as error:
        messages.error(request, f"Could not clear the embedding cache: {error}")
        return HttpResponseRedirect(reverse("admin:embedding-cache"))
    LogEntry.objects.create(
        user_id=request.user.pk,
        content_type=ContentType.objects.get_for_model(PrewarmQuery),
        object_id="",
        object_repr="embedding cache",
        action_flag=CHANGE,
        change_message=f"Cleared the embedding cache: {removed} entries removed.",
    )
    messages.success(request, f"Cleared the embedding cache: {removed} entries removed.")
    return HttpResponseRedirect(reverse("admin:embedding-cache"))


@require_POST
def prewarm_now(request: HttpRequest, site) -> HttpResponse:
    try:
        summary = prewarm_queries()
    except EmbeddingError as error:
        messages.error(request, f"Prewarm failed: {error}")
    else:
        level = messages.WARNING if summary.failed else messages.SUCCESS
        messages.add_message(request, level, f"Prewarm: {summary}.")
    return HttpResponseRedirect(reverse("admin:embedding-cache"))
