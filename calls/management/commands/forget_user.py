from django.core.management.base import BaseCommand, CommandError

from calls.lifecycle import identities_of
from calls.models import CallerIdentity
from calls.phone import normalize_phone_number
from memories.models import Memory, MemoryLink, Space
from memories.owners import Owner, OwnerError
from memories.services import forget_user
from memories.spaces import DEFAULT_SPACE_SLUG


class Command(BaseCommand):
    help = (
        "Forget a caller entirely: memories, links, post-call events, caller identities and the cached "
        "embeddings of their texts; admin history about them loses its names. By user id, or by phone number "
        "(the user id it resolves to), in one memory space (--space, the default space if absent). Without --yes it "
        "only shows what would be removed."
    )

    def add_arguments(self, parser):
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--user-id", help="the user id (as in the API and the admin)")
        who.add_argument("--phone", help="a phone number the caller called from, in any common format")
        parser.add_argument(
            "--space", default=DEFAULT_SPACE_SLUG, help="the memory space's slug (default: %(default)s)"
        )
        parser.add_argument("--yes", action="store_true", help="really forget (there is no undo)")

    def handle(self, *args, user_id, phone, space, yes, **options):
        space_id = Space.objects.filter(slug=space).values_list("pk", flat=True).first()
        if space_id is None:
            raise CommandError(f"no memory space {space!r}")
        if phone is not None:
            user_id = self.resolve_phone(space_id, phone)
        try:
            owner = Owner(space_id, user_id or "")
        except OwnerError as error:
            raise CommandError(f"--user-id: {error}") from None
        memories = Memory.objects.for_user(owner).count()
        links = MemoryLink.objects.filter(space_id=space_id, user_id=owner.user_id).count()
        numbers = list(identities_of(owner).values_list("phone_number", flat=True))
        self.stdout.write(
            f"User {owner.user_id} in space {space}: {memories} memories, {links} links, "
            f"phone numbers: {', '.join(numbers) or 'none'}."
        )
        if not yes:
            raise CommandError("Nothing removed: pass --yes to forget this user (there is no undo).")
        counts = forget_user(owner)
        for kind, count in counts.items():
            self.stdout.write(f"  removed {count} {kind.replace('_', ' ')}")
        if "cached_embeddings" not in counts:
            self.stdout.write(
                self.style.WARNING(
                    "  the embedding cache was unreachable: cached embeddings of their texts were not removed "
                    "(they age out by LRU; run again to retry once it is back)"
                )
            )
        self.stdout.write(self.style.SUCCESS(f"Forgot {owner.user_id}."))

    @staticmethod
    def resolve_phone(space_id: int, phone: str) -> str:
        number = normalize_phone_number(phone)
        if number is None:
            raise CommandError(f"{phone!r} is not a phone number")
        identity = CallerIdentity.objects.filter(space_id=space_id, phone_number=number).first()
        if identity is None:
            raise CommandError(f"no caller has called from {number} in this space")
        return identity.user_id
