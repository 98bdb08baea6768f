"""Start-up checks: the embedding provider must make vectors of the size the database stores.

The column's size is set when the database is first migrated (EMBEDDING_DIMENSIONS then), so the check asks the
database itself: PostgreSQL's column type, or on SQLite the size of a stored vector. A mismatch stops the server
at start-up with what to do, instead of failing every write later.
"""

from django.conf import settings
from django.core.checks import Error, register
from django.db import DatabaseError, connection

from memories.models import Memory

TABLE = Memory._meta.db_table


def stored_dimensions() -> int | None:
    """The vector size the memories table holds; None before the first migrate or, on SQLite, while it is empty."""
    try:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(
                    "SELECT atttypmod FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = 'embedding'",
                    [TABLE],
                )
                row = cursor.fetchone()
                return row[0] if row and row[0] > 0 else None
            cursor.execute(f"SELECT length(embedding) FROM {TABLE} LIMIT 1")
            row = cursor.fetchone()
            return row[0] // 4 if row else None
    except DatabaseError:
        return None


@register("memories")
def check_embedding_dimensions(app_configs=None, **kwargs):
    from embeddings.providers import build_provider

    try:
        provider_dimensions = build_provider().dimensions
    except Exception:
        provider_dimensions = settings.EMBEDDING_DIMENSIONS
    errors = []
    stored = stored_dimensions()
    if stored is not None and stored != provider_dimensions:
        errors.append(
            Error(
                f"the embedding provider makes {provider_dimensions}-dimensional vectors but the memories stored "
                f"hold {stored}",
                hint=f"Go back to a {stored}-dimensional model, or move the memories to the new one: "
                f"`manage.py reembed_memories --dimensions {provider_dimensions}`, then `--swap` (docs/memories.md).",
                id="memories.E001",
            )
        )
    return errors


def assert_ready_to_serve() -> None:
    """Refuse to start a server whose provider would fail at write time (called from wsgi.py/asgi.py)."""
    from django.core.checks import run_checks
    from django.core.exceptions import ImproperlyConfigured

    errors = [issue for issue in run_checks(tags=["memories"]) if issue.is_serious()]
    if errors:
        raise ImproperlyConfigured("; ".join(f"{error.id}: {error.msg}" for error in errors))
