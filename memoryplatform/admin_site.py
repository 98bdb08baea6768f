"""The admin site: Django's, plus the embedding cache page linked from the index, and activity charts on it."""

from django.contrib import admin
from django.urls import path

from calls.tasks import CALLS_PER_DAY
from core.charts import bar_chart
from core.daily import DAYS_SHOWN, daily_points
from memories.tasks import MEMORIES_PER_DAY


class PlatformAdminSite(admin.AdminSite):
    site_header = "Memory platform"
    site_title = "Memory platform admin"
    index_title = "Operations"
    index_template = "admin/platform_index.html"

    def index(self, request, extra_context=None):
        """The index, with memories stored and calls received per day (counted by the worker, not here)."""
        charts = [
            bar_chart(
                "chart-memories-per-day",
                f"Memories stored per day, last {DAYS_SHOWN} days",
                daily_points(MEMORIES_PER_DAY),
            ),
            bar_chart(
                "chart-calls-per-day", f"Calls received per day, last {DAYS_SHOWN} days", daily_points(CALLS_PER_DAY)
            ),
        ]
        return super().index(request, {"activity_charts": charts, **(extra_context or {})})

    def get_urls(self):
        from embeddings import admin_views

        extra = [
            path(
                "embedding-cache/", self.admin_view(lambda r: admin_views.cache_page(r, self)), name="embedding-cache"
            ),
            path(
                "embedding-cache/clear/",
                self.admin_view(lambda r: admin_views.clear_cache(r, self)),
                name="embedding-cache-clear",
            ),
            path(
                "embedding-cache/prewarm/",
                self.admin_view(lambda r: admin_views.prewarm_now(r, self)),
                name="embedding-cache-prewarm",
            ),
        ]
        return extra + super().get_urls()
