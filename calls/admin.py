"""The call integration in the admin: the agents and secrets of memory spaces, caller identities, and the
post-call events with their payloads. Every list shows only the spaces its viewer may see (memories.spaces)."""

import json

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html

from calls import tasks
from calls.models import Agent, CallerIdentity, SpaceSecret, WebhookEvent
from calls.payloads import EventType
from calls.spaces import forget_lookups
from memories.admin import SpaceAdmin, SpaceScopedAdmin, sees_every_space
from memories.models import Space

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


class AgentInline(admin.TabularInline):
    """Registering an agent moves its calls into the space: only staff who see every space may (an agent served
    by the default space until now would otherwise be claimable by the staff of any space)."""

    model = Agent
    extra = 1
    fields = ["agent_id", "name", "created_at"]
    readonly_fields = ["created_at"]

    def has_add_permission(self, request, obj=None) -> bool:
        return super().has_add_permission(request, obj) and sees_every_space(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and sees_every_space(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and sees_every_space(request)


class SpaceSecretInline(admin.TabularInline):
    """A space's secrets, as prefixes: the secrets themselves were shown once, when issued."""

    model = SpaceSecret
    extra = 0
    fields = ["prefix", "label", "created_at", "revoked_at"]
    readonly_fields = ["prefix", "created_at"]
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # issued by the space's "Issue a new secret" action, which shows the secret once


admin.site.unregister(Space)


@admin.register(Space)
class SpaceWithAgentsAdmin(SpaceAdmin):
    """A space with its ElevenLabs agents and its secrets."""

    inlines = [AgentInline, SpaceSecretInline]
    actions = ["issue_secret"]

    @admin.action(description="Issue a new secret (shown once)", permissions=["change"])
    def issue_secret(self, request, queryset):
        for space in queryset:
            _, secret = SpaceSecret.issue(space, label=f"issued by {request.user.get_username()}")
            self.message_user(
                request,
                f"New secret for {space}: {secret} — copy it now into the agents' tool, initiation and Custom LLM "
                "settings; it is not stored and cannot be shown again. Revoke the old one once they use it.",
                messages.WARNING,
            )

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        forget_lookups()


@admin.register(Agent)
class AgentAdmin(SpaceScopedAdmin):
    """Staff see their spaces' agents; registering, moving or removing one is for staff who see every space."""

    list_display = ["agent_id", "name", "space", "created_at"]
    search_fields = ["agent_id", "name"]

    def has_add_permission(self, request) -> bool:
        return super().has_add_permission(request) and sees_every_space(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and sees_every_space(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and sees_every_space(request)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        forget_lookups()


@admin.register(SpaceSecret)
class SpaceSecretAdmin(SpaceScopedAdmin):
    """Issued from the space's page (shown once); revoked here."""

    list_display = ["prefix", "space", "label", "created_at", "revoked_at"]
    fields = ["space", "prefix", "label", "created_at", "revoked_at"]
    readonly_fields = ["space", "prefix", "created_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Revoke the selected secrets", permissions=["change"])
    def revoke(self, request, queryset):
        revoked = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        forget_lookups()
        self.message_user(request, f"Revoked {revoked} secrets (other processes stop accepting them within seconds).")


@admin.register(CallerIdentity)
class CallerIdentityAdmin(SpaceScopedAdmin):
    list_display = ["phone_number", "space", "user_id", "calls", "last_seen_at", "created_at"]
    search_fields = ["phone_number", "=user_id"]
    readonly_fields = ["created_at"]


@admin.register(WebhookEvent)
class WebhookEventAdmin(SpaceScopedAdmin):
    list_display = [
        "id",
        "event_type",
        "conversation_id",
        "space",
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
            if event.payload_erased_at:
                return f"erased by retention on {event.payload_erased_at:%Y-%m-%d %H:%M} UTC (metadata kept)"
            return "not stored" if event.event_type == EventType.AUDIO else "none"
        return format_html("<pre style='white-space: pre-wrap'>{}</pre>", json.dumps(redact(event.payload), indent=2))

    def has_add_permission(self, request):
        return False  # events come from ElevenLabs only

    @admin.action(description="Replay selected events (queue their processing again)", permissions=["change"])
    def replay_selected(self, request, queryset):
        replayed = sum(tasks.replay_event(event) for event in queryset)
        skipped = queryset.count() - replayed
        self.message_user(
            request,
            f"Queued {replayed} events for processing; skipped {skipped} "
            "(not transcriptions, quarantined, or payload erased by retention).",
        )
