from django.core.management.base import BaseCommand
from django.db import connection, transaction

from memories import text_search
from memories.caller_cache import everyone_changed


class Command(BaseCommand):
    help = (
        "Rebuild the lexical (BM25) index of the memories with MEMORY_TEXT_SEARCH_CONFIG: after changing the "
        "language, or to repair it. PostgreSQL rewrites the memories table (minutes for millions of rows); SQLite "
        "refills its FTS5 index."
    )

    def handle(self, *args, **options):
        self.stdout.write(f"Rebuilding the lexical index with the {text_search.config()!r} configuration…")
        with transaction.atomic():
            text_search.uninstall(connection)
            text_search.install(connection, rebuild=True)
            everyone_changed()  # the callers' copies hold the words of the old index
        self.stdout.write(self.style.SUCCESS("Rebuilt."))
