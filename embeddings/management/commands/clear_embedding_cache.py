import sys

from django.core.management.base import BaseCommand, CommandError

from embeddings.clearing import clear_embedding_cache


class Command(BaseCommand):
    help = "Delete every embedding entry from the embedding cache. Other keys in the same Redis are kept."

    def add_arguments(self, parser):
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")
        parser.add_argument(
            "--noinput", "--no-input", action="store_false", dest="interactive", help="Never prompt (needs --yes)."
        )

    def handle(self, *args, yes: bool = False, **options):
        if not yes:
            if not options.get("interactive", True) or not sys.stdin.isatty():
                raise CommandError("Refusing to clear without confirmation: pass --yes.")
            answer = input("Delete every cached embedding? Type 'yes' to continue: ")
            if answer.strip().lower() != "yes":
                self.stdout.write("Cancelled; nothing deleted.")
                return
        try:
            removed = clear_embedding_cache(actor="manage.py clear_embedding_cache")
        except Exception as error:
            raise CommandError(f"could not clear the embedding cache: {error}") from error
        self.stdout.write(self.style.SUCCESS(f"Removed {removed} embedding entries."))
