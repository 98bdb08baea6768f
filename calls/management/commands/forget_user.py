from django.core.management.base import BaseCommand, CommandError

from calls.models import CallerIdentity
from calls.phone import normalize_phone_number
from memories.models import Memory, MemoryLink
from memories.services import forget_user


class Command(BaseCommand):
    help = (
        "Forget a caller entirely: memories, links, post-call events, caller identities and the cached "
        "embeddings of their texts; admin history about them loses its names. By user id, or by phone number "
        "(the user id it resolves to). Without --yes it only shows what would be removed."
    )

    def add_arguments(self, parser):
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--user-id", help="the user id (as in the API and the admin)")
        who.add_argument("--phone", help="a phone number the caller called from, in any common format")
        parser.add_argument("--yes", action="store_true", help="really forget (there is no undo)")

    def handle(self, *args, user_id, phone, yes, **options):
        if phone is not None:
            user_id = self.resolve_phone(phone)
        if not user_id or "\x00" in user_id:
            raise CommandError("--user-id must be a user id")
        memories = Memory.objects.filter(user_id=user_id).count()
        links = MemoryLink.objects.filter(user_id=user_id).count()
        numbers = list(CallerIdentity.objects.filter(user_id=user_id).values_list("phone_number", flat=True))
        self.stdout.write(
            f"User {user_id}: {memories} memories, {links} links, phone numbers: {', '.join(numbers) or 'none'}."
        )
        if not yes:
            raise CommandError("Nothing removed: pass --yes to forget this user (there is no undo).")
        counts = forget_user(user_id)
        for kind, count in counts.items():
            self.stdout.write(f"  removed {count} {kind.replace('_', ' ')}")
        if "cached_embeddings" not in counts:
            self.stdout.write(
                self.style.WARNING(
                    "  the embedding cache was unreachable: cached embeddings of their texts were not removed "
                    "(they age out by LRU; run again to retry once it is back)"
                )
            )
        self.stdout.write(self.style.SUCCESS(f"Forgot {user_id}."))

    @staticmethod
    def resolve_phone(phone: str) -> str:
        number = normalize_phone_number(phone)
        if number is None:
            raise CommandError(f"{phone!r} is not a phone number")
        identity = CallerIdentity.objects.filter(phone_number=number).first()
        if identity is None:
            raise CommandError(f"no caller has called from {number}")
        return identity.user_id
