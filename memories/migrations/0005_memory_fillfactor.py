from django.db import migrations

from memories.database import on_postgresql

SET = "ALTER TABLE memories_memory SET (fillfactor = 80)"
RESET = "ALTER TABLE memories_memory RESET (fillfactor)"


class Migration(migrations.Migration):
    """Leave room on each page so retrieval bookkeeping (salience, access count, last access) is a HOT
    update: no new entry in any index, the HNSW index above all (each insertion there is a graph search).
    Measured in docs/benchmarks.md: without it, reinforcement of a heavy user's memories slowed every query.
    """

    dependencies = [("memories", "0004_caller_identities_and_webhook_events")]
    operations = [migrations.RunPython(on_postgresql(SET), on_postgresql(RESET))]
