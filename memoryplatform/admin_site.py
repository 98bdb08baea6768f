"""The admin site: Django's, plus the embedding cache page linked from the index."""

from django.contrib import admin
from django.urls import path


class PlatformAdminSite(admin.AdminSite):
    site_header = "Memory platform"
    site_title = "Memory platform admin"
    index_title = "Operations"
    index_template = "admin/platform_index.html"

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
