"""The call integration in the admin: caller identities, and the post-call events with their payloads."""

import json

from django.contrib import admin
from django.utils.html import format_html

from calls import tasks
from calls.models import CallerIdentity, WebhookEvent
from calls.payloads import EventType

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
