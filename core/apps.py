from django.apps import AppConfig


class CoreConfig(AppConfig):
    """What every app shares and none owns: secret policies, the task worker and its periodic jobs, metrics."""

    name = "core"
    verbose_name = "Platform core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        if settings.TASKS_IN_PROCESS_WORKER:
            from core.worker import connect_in_process_worker

            connect_in_process_worker()
