from django.db import migrations

from memories.database import on_postgresql

CREATE = (
    "CREATE INDEX IF NOT EXISTS memory_embedding_hnsw ON memories_memory "
    "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
)
DROP = "DROP INDEX IF EXISTS memory_embedding_hnsw"


class Migration(migrations.Migration):
    """HNSW index for heavy users' searches (PostgreSQL only; SQLite searches exactly in numpy)."""

    dependencies = [("memories", "0002_memory_and_links")]
    operations = [migrations.RunPython(on_postgresql(CREATE), on_postgresql(DROP))]
