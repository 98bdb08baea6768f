from django.core.management.base import BaseCommand, CommandError

from calls.retention import erase_old_payloads, retention_rules


class Command(BaseCommand):
    help = (
        "Erase the payloads (transcripts) of post-call events finished more than WEBHOOK_PAYLOAD_RETENTION_DAYS "
        "ago (or their memory space's own retention), keeping their metadata. The worker does this hourly; failed "
        "and quarantined events are kept."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="retention in days for every space (default: each space's own, else WEBHOOK_PAYLOAD_RETENTION_DAYS)",
        )
        parser.add_argument("--dry-run", action="store_true", help="count what would be erased, erase nothing")

    def handle(self, *args, days, dry_run, **options):
        if days is not None and days < 0:
            raise CommandError("--days must be 0 or more")
        rules = retention_rules(days)
        if all(rule_days <= 0 for rule_days, _ in rules):
            self.stdout.write("Retention is off (0 days): payloads are kept until their user is forgotten.")
            return
        count = erase_old_payloads(
            days, dry_run=dry_run, progress=lambda done: self.stdout.write(f"  erased {done} payloads so far")
        )
        verb = "Would erase" if dry_run else "Erased"
        ages = ", ".join(sorted({str(rule_days) for rule_days, _ in rules if rule_days > 0}, key=int))
        self.stdout.write(self.style.SUCCESS(f"{verb} the payloads of {count} events finished over {ages} days ago."))
