from django.core.management.base import BaseCommand, CommandError

from embeddings.models import PrewarmQuery
from embeddings.prewarm import prewarm_queries


class Command(BaseCommand):
    help = "Embed the enabled prewarm queries that are not cached yet (one batch through the cache)."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Report what would be warmed; embed nothing.")

    def handle(self, *args, dry_run: bool = False, **options):
        queries = list(PrewarmQuery.objects.filter(enabled=True))
        if not queries:
            self.stdout.write("No enabled prewarm queries.")
            return
        self.stdout.write(f"Checking {len(queries)} enabled prewarm queries…")
        summary = prewarm_queries(queries, dry_run=dry_run)
        total = len(queries)
        for position, query in enumerate(queries, start=1):
            if query.text in summary.failed:
                state = self.style.ERROR("failed")
            elif query.text in summary.already_cached:
                state = "already cached"
            else:
                state = self.style.SUCCESS("would warm" if dry_run else "warmed")
            self.stdout.write(f"[{_bar(position, total)}] {position}/{total} {query.text}: {state}")
        self.stdout.write(str(summary).capitalize() + ".")
        if summary.failed:
            raise CommandError(next(iter(summary.failed.values())))


def _bar(done: int, total: int, width: int = 20) -> str:
    filled = round(width * done / total)
    return "#" * filled + "." * (width - filled)
