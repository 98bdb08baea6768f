from django.core.management.base import BaseCommand, CommandError

from calls.models import WebhookEvent
from calls.tasks import replay_event, stranded_events


class Command(BaseCommand):
    help = (
        "Queue post-call transcription events again, with a fresh attempt budget: failed ones (default), given "
        "ids, or with --stuck also the stranded ones (a claim whose lease ran out, or an event due for a while with "
        "no task waiting for it). The worker re-queues stranded events by itself; this is for when no worker runs "
        "the sweeper, or to retry failed events after fixing their cause."
    )

    def add_arguments(self, parser):
        parser.add_argument("ids", nargs="*", type=int, help="Event ids to replay (default: every failed event).")
        parser.add_argument("--stuck", action="store_true", help="Also replay stranded events (found by lease).")
        parser.add_argument("--dry-run", action="store_true", help="List what would be replayed.")

    def handle(self, *args, ids, stuck, dry_run, **options):
        if ids:
            events = list(WebhookEvent.objects.filter(pk__in=ids).order_by("pk"))
            missing = set(ids) - {event.pk for event in events}
            if missing:
                raise CommandError(f"no such event: {', '.join(map(str, sorted(missing)))}")
        else:
            events = list(WebhookEvent.objects.filter(status=WebhookEvent.Status.FAILED).order_by("pk"))
            if stuck:
                stranded = stranded_events()
                events = sorted({*events, *stranded.expired, *stranded.unqueued}, key=lambda event: event.pk)
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
