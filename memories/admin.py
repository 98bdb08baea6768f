from django.contrib import admin

from memories.models import Memory, MemoryLink


class LinkInline(admin.TabularInline):
    model = MemoryLink
    fk_name = "from_memory"
    fields = ["to_memory", "weight", "reason", "created_at"]
    readonly_fields = ["created_at"]
    raw_id_fields = ["to_memory"]
    extra = 0


@admin.register(Memory)
class MemoryAdmin(admin.ModelAdmin):
    list_display = ["id", "user_id", "short_text", "sector", "salience", "access_count", "created_at", "superseded_by"]
    list_filter = ["sector", "created_at"]
    search_fields = ["text", "user_id"]
    exclude = ["embedding"]
    readonly_fields = ["embedding_model", "text_hash", "created_at", "last_accessed_at", "access_count"]
    raw_id_fields = ["superseded_by"]
    inlines = [LinkInline]

    @admin.display(description="text")
    def short_text(self, memory: Memory) -> str:
        return memory.text if len(memory.text) <= 80 else memory.text[:79] + "…"


@admin.register(MemoryLink)
class MemoryLinkAdmin(admin.ModelAdmin):
    list_display = ["from_memory", "to_memory", "weight", "reason", "user_id"]
    list_filter = ["reason"]
    search_fields = ["user_id"]
    raw_id_fields = ["from_memory", "to_memory"]
