"""Start-up checks: the embedding provider must produce vectors of the size the schema stores."""

from django.conf import settings
from django.core.checks import Error, register

from memories.models import Memory


def schema_dimensions() -> int:
    return Memory._meta.get_field("embedding").dimensions


@register("memories")
def check_embedding_dimensions(app_configs=None, **kwargs):
    from embeddings.providers import build_provider

    expected = schema_dimensions()
    try:
        provider_dimensions = build_provider().dimensions
    except Exception:
        provider_dimensions = settings.EMBEDDING_DIMENSIONS
    if provider_dimensions != expected:
        return [
            Error(
                f"the embedding provider makes {provider_dimensions}-dimensional vectors but the memory schema "
                f"stores {expected}",
                hint=f"Set EMBEDDING_DIMENSIONS={expected} with a model that supports it (text-embedding-3-* do), "
                "or migrate the schema to the new size and run `manage.py reembed_memories`.",
                id="memories.E001",
            )
        ]
    return []


def assert_ready_to_serve() -> None:
    """Refuse to start a server whose provider would fail at write time (called from wsgi.py/asgi.py)."""
    from django.core.checks import run_checks
    from django.core.exceptions import ImproperlyConfigured

    errors = [issue for issue in run_checks(tags=["memories"]) if issue.is_serious()]
    if errors:
        raise ImproperlyConfigured("; ".join(f"{error.id}: {error.msg}" for error in errors))
