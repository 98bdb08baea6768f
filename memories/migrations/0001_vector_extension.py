from django.db import migrations
from pgvector.django import VectorExtension


class Migration(migrations.Migration):
    """The `vector` extension on PostgreSQL (a no-op on SQLite, where vectors are searched with numpy)."""

    initial = True
    dependencies = []
    operations = [VectorExtension()]
