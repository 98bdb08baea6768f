import json

from django.contrib import admin, messages
from django.db.models import Q
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from memories.ingestion import replay_event
from memories.models import CallerIdentity, Memory, MemoryLink, UserVectorIndex, WebhookEvent
from memories.services import forget_user

# Keys whose values never appear in the admin, wherever they sit in a payload.
SECRET_KEYS = ("secret", "token", "password", "authorization", "signature", "api_key", "apikey")
AUDIO_KEYS = ("full_audio", "audio")


def redact(value):
    """A payload with secrets masked and audio replaced by its size."""
    if isinstance(value, dict):
        clean = {}
        for key, item in value.items():
            lowered = str(key).lower()
            if any(word in lowered for word in SECRET_KEYS):
                clean[key] = "•••"
            elif lowered in AUDIO_KEYS:
                clean[key] = f"<audio not stored ({len(item) if isinstance(item, str) else 0} characters)>"
            else:
                clean[key] = redact(item)
        return clean
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


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
    list_display = ["id", "user_id", "short_text", "sector", "salience", "access_count", "created_at", "superseded_by"]
    list_filter = ["sector", SupersededFilter, "created_at"]
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


@admin.register(CallerIdentity)
class CallerIdentityAdmin(admin.ModelAdmin):
    list_display = ["phone_number", "user_id", "calls", "last_seen_at", "created_at"]
    search_fields = ["phone_number", "=user_id"]
    readonly_fields = ["created_at"]


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "event_type",
        "conversation_id",
        "user_id",
        "status",
        "attempts",
        "received_at",
        "memories_created",
    ]
    list_filter = ["status", "event_type", "received_at"]
    search_fields = ["conversation_id", "=user_id", "agent_id"]
    exclude = ["payload"]
    readonly_fields = [field.name for field in WebhookEvent._meta.fields if field.name != "payload"] + [
        "payload_pretty"
    ]
    actions = ["replay_selected"]

    @admin.display(description="payload (secrets masked, audio never stored)")
    def payload_pretty(self, event: WebhookEvent) -> str:
        if event.payload is None:
            return "not stored" if event.event_type == "post_call_audio" else "none"
        return format_html("<pre style='white-space: pre-wrap'>{}</pre>", json.dumps(redact(event.payload), indent=2))

    def has_add_permission(self, request):
        return False  # events come from ElevenLabs only

    @admin.action(description="Replay selected events (queue their processing again)")
    def replay_selected(self, request, queryset):
        replayed = sum(replay_event(event) for event in queryset)
        skipped = queryset.count() - replayed
        self.message_user(request, f"Queued {replayed} events for processing; skipped {skipped} (not transcriptions).")


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
