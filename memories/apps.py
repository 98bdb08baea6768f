from django.apps import AppConfig


class MemoriesConfig(AppConfig):
    name = "memories"
    verbose_name = "Memories"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate, post_save

        from memories import checks  # noqa: F401 - registers the system checks
        from memories.caller_cache import everyone_migrated, memory_saved
        from memories.forget import register_forgetter
        from memories.user_indexes import forget_user_index

        register_forgetter("vector_indexes", forget_user_index)
        post_migrate.connect(ensure_text_index, sender=self, dispatch_uid="memories-text-index")
        post_migrate.connect(ensure_default_space, sender=self, dispatch_uid="memories-default-space")
        # Every save of a memory, whatever path made it, outdates the web processes' copies of its caller (deletions
        # say so themselves: memories.services).
        post_save.connect(memory_saved, sender="memories.Memory", dispatch_uid="memories-caller-cache-save")
        post_migrate.connect(everyone_migrated, sender=self, dispatch_uid="memories-caller-cache-migrate")


def ensure_default_space(using: str = "default", **kwargs) -> None:
    """After every migrate (and every flush, which empties the tables): the default space exists. Its migration
    created it; this puts it back in a database that was emptied since, with the same id."""
    from django.core.management.color import no_style
    from django.db import connections

    from memories.models import Space
    from memories.owners import DEFAULT_SPACE_ID

    if Space._meta.db_table not in connections[using].introspection.table_names():
        return  # migrated back before spaces existed
    _, created = Space.objects.using(using).get_or_create(
        pk=DEFAULT_SPACE_ID, defaults={"slug": "default", "name": "Default", "accepts_unregistered_agents": True}
    )
    if created:  # an explicit id does not move PostgreSQL's sequence: the next space must not collide with it
        connection = connections[using]
        with connection.cursor() as cursor:
            for statement in connection.ops.sequence_reset_sql(no_style(), [Space]):
                cursor.execute(statement)


def ensure_text_index(using: str = "default", **kwargs) -> None:
    """After every migrate: the lexical index exists with its triggers (SQLite drops a table's triggers when a
    migration remakes the table; this puts them back and refills the index)."""
    from django.db import connections

    from memories import text_search

    text_search.install(connections[using])
