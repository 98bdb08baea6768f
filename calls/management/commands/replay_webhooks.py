from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from calls.models import WebhookEvent
from calls.tasks import replay_event


class Command(BaseCommand):
    help = (
        "Queue post-call transcription events again: failed ones (default), given ids, or --stuck ones that "
        "have waited longer than --older-than minutes in received/retrying/processing."
    )

    def add_arguments(self, parser):
        parser.add_argument("ids", nargs="*", type=int, help="Event ids to replay (default: every failed event).")
        parser.add_argument("--stuck", action="store_true", help="Also replay events stuck before processing.")
        parser.add_argument("--older-than", type=int, default=15, help="Minutes before an event counts as stuck.")
        parser.add_argument("--dry-run", action="store_true", help="List what would be replayed.")

    def handle(self, *args, ids, stuck, older_than, dry_run, **options):
        if ids:
            events = WebhookEvent.objects.filter(pk__in=ids)
            missing = set(ids) - set(events.values_list("pk", flat=True))
            if missing:
                raise CommandError(f"no such event: {', '.join(map(str, sorted(missing)))}")
        else:
            statuses = [WebhookEvent.Status.FAILED]
            events = WebhookEvent.objects.filter(status__in=statuses)
            if stuck:
                cutoff = timezone.now() - timedelta(minutes=older_than)
                stuck_statuses = [
                    WebhookEvent.Status.RECEIVED,
                    WebhookEvent.Status.RETRYING,
                    WebhookEvent.Status.PROCESSING,
                ]
                events = events | WebhookEvent.objects.filter(status__in=stuck_statuses, received_at__lt=cutoff)
        events = list(events.order_by("pk"))
        if not events:
            self.stdout.write("Nothing to replay.")
            return
        replayed = skipped = 0
        for position, event in enumerate(events, start=1):
            if dry_run:
                self.stdout.write(f"[{position}/{len(events)}] would replay {event}")
                continue
            if replay_event(event):
                replayed += 1
                self.stdout.write(f"[{position}/{len(events)}] queued {event.event_type} {event.conversation_id}")
            else:
                skipped += 1
                self.stdout.write(f"[{position}/{len(events)}] skipped {event} (not a stored transcription)")
        if not dry_run:
            self.stdout.write(self.style.SUCCESS(f"Queued {replayed} events; skipped {skipped}."))
