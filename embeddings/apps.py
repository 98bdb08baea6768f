from django.apps import AppConfig
from django.core.signals import request_started


class EmbeddingsConfig(AppConfig):
    name = "embeddings"
    verbose_name = "Embeddings"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        from embeddings import checks, signals  # noqa: F401 - registers checks and setting-change handlers

        if settings.EMBEDDING_PREWARM_ON_STARTUP:
            # On the first request of each server process, not at import: management commands (migrate,
            # the worker) must not embed anything, and the prewarm runs in a thread off the request path.
            request_started.connect(_prewarm_once, dispatch_uid="embeddings-startup-prewarm")


def _prewarm_once(**kwargs) -> None:
    from embeddings.prewarm import prewarm_in_background

    request_started.disconnect(dispatch_uid="embeddings-startup-prewarm")
    prewarm_in_background()
