"""Database helpers of the memory engine: per-user write serialisation, relaxed commits, PostgreSQL-only DDL."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction

from memories.owners import Owner


@contextmanager
def user_write_lock(owner: Owner) -> Iterator[None]:
    """A transaction in which no other writer of the same user runs, so two concurrent stores of the same fact
    cannot both insert it.

    PostgreSQL: a transaction-scoped advisory lock per user. SQLite: every transaction already takes the
    database write lock up front (transaction_mode IMMEDIATE).
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"memories:{owner.key}"])
        yield


@contextmanager
def relaxed_commit() -> Iterator[None]:
    """A transaction whose commit does not wait for the WAL to reach disk (PostgreSQL).

    For bookkeeping on the request path (retrieval counts, last-seen times): a crash may lose the last few
    hundred milliseconds of such updates, which costs nothing, while waiting for the flush costs a few ms on
    every memory query. Never used for anything that stores a memory or an event.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield


def on_postgresql(sql: str):
    """A migration's RunPython callable that executes `sql` on PostgreSQL and does nothing elsewhere (SQLite has
    no HNSW, no fillfactor)."""

    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run
