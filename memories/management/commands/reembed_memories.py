from django.core.management.base import BaseCommand, CommandError

from embeddings.errors import EmbeddingError
from embeddings.generation import generate_embeddings_batch
from embeddings.providers import get_provider
from memories.models import Memory


class Command(BaseCommand):
    help = (
        "Re-embed memories with the configured embedding model, in batches (after changing EMBEDDING_MODEL or "
        "the provider). By default only memories embedded by another model; --all for every memory."
    )

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="Re-embed every memory, not only stale ones.")
        parser.add_argument("--batch-size", type=int, default=256, help="Memories per embedding batch (default 256).")
        parser.add_argument("--user", help="Only this user's memories.")

    def handle(self, *args, **options):
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
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
            Memory.objects.bulk_update(batch, ["embedding", "embedding_model"])
            done += len(batch)
            last_pk = batch[-1].pk
            self.stdout.write(f"  {done}/{total} ({100 * done // total}%)")
        self.stdout.write(self.style.SUCCESS(f"Re-embedded {done} memories."))
