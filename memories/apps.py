from django.apps import AppConfig


class MemoriesConfig(AppConfig):
    name = "memories"
    verbose_name = "Memories"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        from embeddings.metrics import register_collector
        from memories import checks  # noqa: F401 - registers the system checks
        from memories.forget import register_forgetter
        from memories.identity import forget_caller_identities
        from memories.ingestion import forget_webhook_events
        from memories.metrics import MemoriesCollector
        from memories.user_indexes import forget_user_index

        register_forgetter("webhook_events", forget_webhook_events)  # first: it needs the caller identities
        register_forgetter("caller_identities", forget_caller_identities)
        register_forgetter("vector_indexes", forget_user_index)
        register_collector(MemoriesCollector)
        if settings.TASKS_IN_PROCESS_WORKER:
            from memories import worker

            worker.connect()
