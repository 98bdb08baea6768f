from django.contrib import admin

from embeddings.models import PrewarmQuery


@admin.register(PrewarmQuery)
class PrewarmQueryAdmin(admin.ModelAdmin):
    list_display = ["text", "enabled", "last_warmed_at"]
    list_editable = ["enabled"]
    list_filter = ["enabled"]
    search_fields = ["text", "notes"]
