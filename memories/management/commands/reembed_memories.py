from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from embeddings.errors import EmbeddingError
from embeddings.generation import generate_embeddings_batch
from embeddings.providers import get_provider
from memories import vector_resize
from memories.caller_cache import caller_changed
from memories.checks import stored_dimensions
from memories.models import Memory


class Command(BaseCommand):
    help = (
        "Re-embed memories with the configured embedding model, in batches, through the cache. After a change of "
        "model of the same size: the memories embedded by another model (--all: every memory). After a change of "
        "size, run it with the new settings and --dimensions N (fills a second column while the service runs; "
        "resumable), then stop the service and run it again with --swap. See docs/memories.md."
    )
    # The check that the stored size matches the provider's is exactly what this command exists to fix.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="Re-embed every memory, not only stale ones.")
        parser.add_argument("--batch-size", type=int, default=256, help="Memories per embedding batch (default 256).")
        parser.add_argument("--user", help="Only this user's memories (same size only).")
        parser.add_argument(
            "--dimensions", type=int, help="Move to a model of this size (must equal EMBEDDING_DIMENSIONS)."
        )
        parser.add_argument(
            "--swap", action="store_true", help="With --dimensions: finish and switch (service stopped)."
        )

    def handle(self, *args, **options):
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        if options["dimensions"] is not None or options["swap"]:
            self.resize(options["dimensions"], options["batch_size"], options["swap"])
            return
        stored = stored_dimensions()
        if stored is not None and stored != settings.EMBEDDING_DIMENSIONS:
            raise CommandError(
                f"the memories hold {stored}-dimensional vectors and the provider makes "
                f"{settings.EMBEDDING_DIMENSIONS}: run with --dimensions {settings.EMBEDDING_DIMENSIONS}"
            )
        self.reembed_same_size(options)

    def reembed_same_size(self, options) -> None:
        model = get_provider().model
        memories = Memory.objects.order_by("pk")
        if options["user"]:
            memories = memories.filter(user_id=options["user"])
        if not options["all"]:
            memories = memories.exclude(embedding_model=model)
        total = memories.count()
        if not total:
            self.stdout.write(f"Nothing to re-embed: every memory is already embedded with {model}.")
            return
        self.stdout.write(f"Re-embedding {total} memories with {model}…")
        done, last_pk = 0, 0
        while done < total:
            batch = list(memories.filter(pk__gt=last_pk).defer("embedding")[: options["batch_size"]])
            if not batch:
                break
            try:
                vectors = generate_embeddings_batch([memory.text for memory in batch])
            except EmbeddingError as error:
                raise CommandError(f"stopped after {done} of {total}: {error}") from error
            for memory, vector in zip(batch, vectors, strict=True):
                memory.embedding = vector
                memory.embedding_model = model
            with transaction.atomic():
                Memory.objects.bulk_update(batch, ["embedding", "embedding_model"])
                for owner in {memory.owner for memory in batch}:
                    caller_changed(owner)  # bulk_update sends no post_save
            done += len(batch)
            last_pk = batch[-1].pk
            self.stdout.write(f"  {done}/{total} ({100 * done // total}%)")
        self.stdout.write(self.style.SUCCESS(f"Re-embedded {done} memories."))

    def resize(self, dimensions: int | None, batch_size: int, swap: bool) -> None:
        wanted = settings.EMBEDDING_DIMENSIONS
        if dimensions is not None and dimensions != wanted:
            raise CommandError(
                f"--dimensions {dimensions} but EMBEDDING_DIMENSIONS is {wanted}: run this command with the new "
                "model's settings"
            )
        if stored_dimensions() == wanted and not vector_resize.has_next_column():
            self.stdout.write(f"Nothing to do: the memories already hold {wanted}-dimensional vectors.")
            return
        model = get_provider().model
        vector_resize.add_next_column(wanted)
        self.stdout.write(f"Embedding {vector_resize.remaining():,} memories with {model} ({wanted} dimensions)…")
        try:
            vector_resize.fill(batch_size, lambda done, total: self.stdout.write(f"  {done}/{total}"))
        except EmbeddingError as error:
            raise CommandError(f"stopped: {error}. What is embedded stays; run the command again to go on.") from error
        if not swap:
            self.stdout.write(
                self.style.SUCCESS(
                    "Every memory has its new vector. Stop the web and worker processes, run this command again with "
                    "--swap, then start them with the new settings."
                )
            )
            return
        vector_resize.swap()
        self.stdout.write(
            self.style.SUCCESS(
                f"Switched to {model} ({wanted} dimensions). Start the service with these settings; "
                "`manage.py sync_user_indexes` rebuilds heavy users' dedicated indexes (PostgreSQL)."
            )
        )
