from django.contrib import admin, messages

from embeddings.errors import EmbeddingError
from embeddings.models import PrewarmQuery
from embeddings.prewarm import cached_query_texts, prewarm_queries


@admin.register(PrewarmQuery)
class PrewarmQueryAdmin(admin.ModelAdmin):
    list_display = ["text", "enabled", "cached_now", "last_warmed_at", "notes"]
    list_display_links = None
    list_editable = ["text", "enabled", "notes"]
    list_filter = ["enabled"]
    search_fields = ["text", "notes"]
    readonly_fields = ["last_warmed_at", "created_at"]
    actions = ["warm_selected", "enable_selected", "disable_selected"]

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        # One cache lookup for the whole page (not counted as hits or misses).
        try:
            cached = cached_query_texts(query.text for query in changelist.result_list)
        except EmbeddingError:
            cached = set()
        for query in changelist.result_list:
            query.is_cached_now = query.text in cached
        return changelist

    @admin.display(boolean=True, description="cached now")
    def cached_now(self, query: PrewarmQuery) -> bool | None:
        return getattr(query, "is_cached_now", None)

    @admin.action(description="Warm selected queries now", permissions=["change"])
    def warm_selected(self, request, queryset):
        summary = prewarm_queries(list(queryset))
        level = messages.WARNING if summary.failed else messages.SUCCESS
        self.message_user(request, f"Prewarm: {summary}.", level)

    @admin.action(description="Enable selected queries", permissions=["change"])
    def enable_selected(self, request, queryset):
        self.message_user(request, f"Enabled {queryset.update(enabled=True)} queries.")

    @admin.action(description="Disable selected queries", permissions=["change"])
    def disable_selected(self, request, queryset):
        self.message_user(request, f"Disabled {queryset.update(enabled=False)} queries.")
