"""Moving every memory to an embedding model of another size, resumably, without zero-padding anything.

Vectors of two sizes cannot share a column (nor an index), and a model's vectors cannot be converted into another
model's: every memory is embedded again. In two steps, run with the new model's settings
(EMBEDDING_PROVIDER / EMBEDDING_MODEL / EMBEDDING_DIMENSIONS):

1. `fill`: a second column `embedding_next` of the new size is added and filled in batches, through the
   embedding cache; safe while the service keeps serving with the old model, and resumable (only rows whose new
   vector is missing are embedded, so a stopped run goes on where it stopped).
2. `swap`, with the web and worker processes stopped: the rows added meanwhile are filled, then in one
   transaction the old column and its indexes go, the new column takes the name `embedding`, and the shared HNSW
   index is rebuilt. Heavy users' dedicated indexes are dropped (`manage.py sync_user_indexes` builds new ones).
   Start the processes with the new settings afterwards.
"""

from collections.abc import Callable

import numpy as np
from django.db import connection, transaction

from embeddings.codec import encode_vector
from embeddings.generation import generate_embeddings_batch
from embeddings.providers import get_provider
from memories.caller_cache import everyone_changed
from memories.models import Memory, UserVectorIndex
from memories.vector_plans import DEDICATED_INDEX_PREFIX, plans

TABLE = Memory._meta.db_table
NEXT = "embedding_next"
SHARED_INDEX = "memory_embedding_hnsw"
CREATE_SHARED_INDEX = (
    f"CREATE INDEX IF NOT EXISTS {SHARED_INDEX} ON {TABLE} "
    "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
)


def has_next_column() -> bool:
    with connection.cursor() as cursor:
        columns = {column.name for column in connection.introspection.get_table_description(cursor, TABLE)}
    return NEXT in columns


def add_next_column(dimensions: int) -> None:
    column_type = f"vector({dimensions})" if connection.vendor == "postgresql" else "blob"
    if not has_next_column():
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {TABLE} ADD COLUMN {NEXT} {column_type} NULL")


def remaining() -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {TABLE} WHERE {NEXT} IS NULL")
        return cursor.fetchone()[0]


def fill(batch_size: int, report: Callable[[int, int], None]) -> int:
    """Embed every memory whose new vector is missing, `batch_size` at a time; returns how many were embedded.
    Raises the embedding errors (what was embedded stays: run it again to go on)."""
    total, done = remaining(), 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id, text FROM {TABLE} WHERE {NEXT} IS NULL ORDER BY id LIMIT %s", [batch_size])
            rows = cursor.fetchall()
        if not rows:
            return done
        vectors = generate_embeddings_batch([text for _, text in rows])
        values = [(_to_db(vector), memory_id) for (memory_id, _), vector in zip(rows, vectors, strict=True)]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(f"UPDATE {TABLE} SET {NEXT} = %s WHERE id = %s", values)
        done += len(rows)
        report(done, max(total, done))


def swap() -> None:
    """The new column becomes `embedding` (see the module's docstring: with the service stopped)."""
    model = get_provider().model
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"DROP INDEX IF EXISTS {SHARED_INDEX}")
            for name in dedicated_index_names(cursor):
                cursor.execute(f"DROP INDEX IF EXISTS {name}")
            UserVectorIndex.objects.all().delete()
        cursor.execute(f"ALTER TABLE {TABLE} DROP COLUMN embedding")
        cursor.execute(f"ALTER TABLE {TABLE} RENAME COLUMN {NEXT} TO embedding")
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN embedding SET NOT NULL")
            cursor.execute(CREATE_SHARED_INDEX)
        cursor.execute(f"UPDATE {TABLE} SET embedding_model = %s", [model])
        everyone_changed()
    plans.forget()


def dedicated_index_names(cursor) -> list[str]:
    cursor.execute(
        "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexname LIKE %s",
        [TABLE, DEDICATED_INDEX_PREFIX + "%"],
    )
    return [row[0] for row in cursor.fetchall()]


def _to_db(vector: np.ndarray):
    if connection.vendor == "postgresql":
        return "[" + ",".join(repr(float(value)) for value in vector) + "]"
    return encode_vector(vector)
