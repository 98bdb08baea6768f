from django.apps import AppConfig


class CallsConfig(AppConfig):
    """The ElevenLabs call integration: it uses the memory engine and the embedding service, never the reverse."""

    name = "calls"
    verbose_name = "Calls (ElevenLabs)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from calls.lifecycle import forget_caller_identities, forget_webhook_events
        from memories.forget import register_forgetter

        register_forgetter("webhook_events", forget_webhook_events)  # first: it needs the caller identities
        register_forgetter("caller_identities", forget_caller_identities)
