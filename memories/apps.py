from django.apps import AppConfig


class MemoriesConfig(AppConfig):
    name = "memories"
    verbose_name = "Memories"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from memories import checks  # noqa: F401 - registers the system checks
        from memories.forget import register_forgetter
        from memories.user_indexes import forget_user_index

        register_forgetter("vector_indexes", forget_user_index)
        post_migrate.connect(ensure_text_index, sender=self, dispatch_uid="memories-text-index")


def ensure_text_index(using: str = "default", **kwargs) -> None:
    """After every migrate: the lexical index exists with its triggers (SQLite drops a table's triggers when a
    migration remakes the table; this puts them back and refills the index)."""
    from django.db import connections

    from memories import text_search

    text_search.install(connections[using])
