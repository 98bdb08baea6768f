from django.apps import AppConfig


class CallsConfig(AppConfig):
    """The ElevenLabs call integration: it uses the memory engine and the embedding service, never the reverse."""

    name = "calls"
    verbose_name = "Calls (ElevenLabs)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from calls import checks, lifecycle  # noqa: F401 - checks registers the system checks
        from memories.forget import register_exporter, register_forgetter

        register_forgetter("webhook_events", lifecycle.forget_webhook_events)  # first: it needs the identities
        register_forgetter("caller_identities", lifecycle.forget_caller_identities)
        register_exporter("caller_identities", lifecycle.export_caller_identities)
        register_exporter("webhook_events", lifecycle.export_webhook_events)
