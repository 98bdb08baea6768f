"""The memory engine in the admin: memories (with their links), links, and heavy users' vector indexes."""

from django.contrib import admin, messages
from django.db.models import Q
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from memories.models import Memory, MemoryLink, UserVectorIndex
from memories.services import forget_user


class SupersededFilter(admin.SimpleListFilter):
    title = "superseded"
    parameter_name = "superseded"

    def lookups(self, request, model_admin):
        return [("no", "current"), ("yes", "superseded (history)")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(superseded_by__isnull=True)
        if self.value() == "yes":
            return queryset.filter(superseded_by__isnull=False)
        return queryset


@admin.register(Memory)
class MemoryAdmin(admin.ModelAdmin):
    list_display = ["id", "user_id", "kind", "short_text", "sector", "salience", "access_count", "occurred_at"]
    list_filter = ["kind", "sector", SupersededFilter, "occurred_at"]
    search_fields = ["text", "=user_id"]
    exclude = ["embedding"]
    readonly_fields = ["embedding_model", "text_hash", "created_at", "last_accessed_at", "access_count", "links"]
    raw_id_fields = ["superseded_by"]
    actions = ["forget_users"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("embedding")

    @admin.display(description="text")
    def short_text(self, memory: Memory) -> str:
        return memory.text if len(memory.text) <= 80 else memory.text[:79] + "…"

    @admin.display(description="links (both directions, same user only)")
    def links(self, memory: Memory) -> str:
        rows = (
            MemoryLink.objects.filter(Q(from_memory=memory) | Q(to_memory=memory), user_id=memory.user_id)
            .select_related("from_memory", "to_memory")
            .order_by("-weight")
        )
        items = []
        for link in rows:
            other = link.to_memory if link.from_memory_id == memory.pk else link.from_memory
            items.append((f"../../{other.pk}/change/", other.text[:80], link.reason, f"{link.weight:.2f}"))
        if not items:
            return "none"
        return format_html("<ul>{}</ul>", format_html_join("", '<li><a href="{}">{}</a> ({}, {})</li>', items))

    @admin.action(description="Forget the users of the selected memories (everything about them)")
    def forget_users(self, request, queryset):
        users = sorted(set(queryset.values_list("user_id", flat=True)))
        if request.POST.get("confirmed") == "yes":
            for user_id in users:
                counts = forget_user(user_id)
                summary = ", ".join(f"{count} {kind.replace('_', ' ')}" for kind, count in counts.items())
                self.message_user(request, f"Forgot {user_id}: {summary}.", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Forget these users?",
            "users": users,
            "memory_counts": {user: Memory.objects.filter(user_id=user).count() for user in users},
            "queryset": queryset,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/memories/forget_confirm.html", context)


@admin.register(MemoryLink)
class MemoryLinkAdmin(admin.ModelAdmin):
    list_display = ["from_memory", "to_memory", "weight", "reason", "user_id"]
    list_filter = ["reason"]
    search_fields = ["=user_id"]
    raw_id_fields = ["from_memory", "to_memory"]


@admin.register(UserVectorIndex)
class UserVectorIndexAdmin(admin.ModelAdmin):
    """Read-only: indexes are built and dropped by the worker and `manage.py sync_user_indexes`."""

    list_display = ["user_id", "status", "memories_at_build", "build_seconds", "ready_at", "index_name"]
    list_filter = ["status"]
    search_fields = ["=user_id"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
