from django.apps import AppConfig


class MemoriesConfig(AppConfig):
    name = "memories"
    verbose_name = "Memories"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from memories import checks  # noqa: F401 - registers the system checks
        from memories.forget import register_forgetter
        from memories.user_indexes import forget_user_index

        register_forgetter("vector_indexes", forget_user_index)
