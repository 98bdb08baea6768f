from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from memories import user_indexes
from memories.models import UserVectorIndex


class Command(BaseCommand):
    help = (
        "Give the heaviest users a dedicated HNSW index (PostgreSQL): build the missing or failed ones, drop "
        "those no longer needed. Safe while serving: indexes are built and dropped CONCURRENTLY. "
        "See docs/memories.md."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--min-memories",
            type=int,
            default=None,
            help="Current memories a user needs (default: MEMORY_USER_INDEX_MIN_MEMORIES).",
        )
        parser.add_argument(
            "--max-indexes", type=int, default=None, help="At most this many indexes (default: MEMORY_USER_INDEX_MAX)."
        )
        parser.add_argument("--dry-run", action="store_true", help="Show what would change; change nothing.")
        parser.add_argument("--list", action="store_true", help="List the dedicated indexes and their state.")

    def handle(self, *args, **options):
        if not user_indexes.supported():
            raise CommandError("dedicated vector indexes need PostgreSQL with pgvector (DATABASE_URL)")
        if options["list"]:
            self.list_indexes()
            return
        min_memories = options["min_memories"] or settings.MEMORY_USER_INDEX_MIN_MEMORIES
        max_indexes = settings.MEMORY_USER_INDEX_MAX if options["max_indexes"] is None else options["max_indexes"]
        if min_memories < 1 or max_indexes < 0:
            raise CommandError("--min-memories must be at least 1 and --max-indexes at least 0")
        plan = user_indexes.plan_sync(min_memories, max_indexes)
        self.stdout.write(
            f"Users with at least {min_memories:,} memories, at most {max_indexes} indexes: "
            f"{len(plan.build)} to build, {len(plan.keep)} to keep, {len(plan.drop) + len(plan.orphans)} to drop."
        )
        for user_id, count in plan.build:
            self.stdout.write(f"  build  {user_id} ({count:,} memories)")
        for user_id in plan.drop:
            self.stdout.write(f"  drop   {user_id}")
        for name in plan.orphans:
            self.stdout.write(f"  drop   {name} (no user recorded)")
        if options["dry_run"]:
            self.stdout.write("Dry run: nothing changed.")
            return
        counts = user_indexes.sync(plan, report=lambda line: self.stdout.write(f"  {line}"))
        summary = "Built {built}, kept {kept}, dropped {dropped}, failed {failed}.".format(**counts)
        if counts["failed"]:
            raise CommandError(summary + " See the errors above (and the user vector indexes in the admin).")
        self.stdout.write(self.style.SUCCESS(summary))

    def list_indexes(self) -> None:
        present = user_indexes.existing_indexes()
        records = list(UserVectorIndex.objects.all())
        if not records:
            self.stdout.write("No dedicated vector indexes.")
        for record in records:
            state = {True: "valid", False: "INVALID"}.get(present.get(record.index_name), "MISSING")
            self.stdout.write(
                f"{record.user_id}: {record.status}, {record.memories_at_build:,} memories at build, "
                f"index {record.index_name} {state}" + (f", error: {record.last_error}" if record.last_error else "")
            )
