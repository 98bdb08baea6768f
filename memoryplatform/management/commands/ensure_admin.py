import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create an admin login when there is no superuser yet (password from --password or random, printed "
        "once); otherwise say which logins exist and how to reset a password."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password", default="", help="Default: a random password, printed once.")

    def handle(self, *args, username: str, password: str, **options):
        User = get_user_model()
        existing = list(User.objects.filter(is_superuser=True).values_list("username", flat=True)[:5])
        if existing:
            names = ", ".join(existing)
            self.stdout.write(
                f"Admin login: {names} (forgot the password? .venv/bin/python manage.py changepassword {existing[0]})"
            )
            return
        password = password or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        self.stdout.write(self.style.SUCCESS(f"Created admin login: {username} / {password}  (shown only once)"))
