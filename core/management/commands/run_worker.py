import logging
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.crypto import get_random_string

from core.worker import PlatformWorker


class Command(BaseCommand):
    help = (
        "Run the background worker: processes queued tasks (post-call events, index builds) and runs every app's "
        "periodic jobs (re-queueing stranded events, cache statistics samples, ...). It waits out database "
        "outages and keeps a heartbeat (see worker_health). Production runs one or more of these; the embedded "
        "stack runs one inside the web process instead."
    )

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=1.0, help="Seconds between polls of an empty queue.")
        parser.add_argument("--batch", action="store_true", help="Run what is queued, then exit (tests, cron).")
        parser.add_argument("--max-tasks", type=int, default=None, help="Exit after this many tasks.")
        parser.add_argument("--worker-id", default="", help="Unique id of this worker (default: random).")
        parser.add_argument(
            "--heartbeat-file",
            default=None,
            help="Where to write the heartbeat for `worker_health` (default: WORKER_HEARTBEAT_FILE).",
        )

    def handle(self, *args, interval: float, batch: bool, max_tasks: int | None, worker_id: str, **options):
        if interval < 0:
            raise CommandError("--interval must be zero or more")
        if max_tasks is not None and max_tasks < 1:
            raise CommandError("--max-tasks must be at least 1")
        if options["verbosity"] > 1:
            logging.getLogger("core").setLevel(logging.DEBUG)
        worker = PlatformWorker(
            worker_id=worker_id or f"worker-{get_random_string(12)}",
            interval=interval,
            batch=batch,
            max_tasks=max_tasks,
            heartbeat_file=Path(options["heartbeat_file"] or settings.WORKER_HEARTBEAT_FILE),
        )
        worker.configure_signals()
        worker.run()
