"""Helpers for schema steps that only exist on PostgreSQL (SQLite has no HNSW, no fillfactor)."""


def on_postgresql(sql: str):
    """A RunPython callable that executes `sql` on PostgreSQL and does nothing elsewhere."""

    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run
