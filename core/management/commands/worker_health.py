import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.worker import read_heartbeat_file


class Command(BaseCommand):
    help = (
        "Exit 0 when this machine's task worker (`run_worker`) has beaten recently, 1 otherwise: the container "
        "healthcheck. Reads the heartbeat file, not the database, so a worker waiting out a database outage is "
        "still alive."
    )

    def add_arguments(self, parser):
        parser.add_argument("--heartbeat-file", default=None, help="Default: WORKER_HEARTBEAT_FILE.")
        parser.add_argument(
            "--max-age", type=float, default=None, help="Seconds since the last beat (default: WORKER_STALE_SECONDS)."
        )

    def handle(self, *args, heartbeat_file: str | None, max_age: float | None, **options):
        path = Path(heartbeat_file or settings.WORKER_HEARTBEAT_FILE)
        max_age = settings.WORKER_STALE_SECONDS if max_age is None else max_age
        state = read_heartbeat_file(path)
        if state is None:
            raise CommandError(f"no worker heartbeat at {path}: is `run_worker` running here?")
        age = time.time() - float(state.get("beat_at", 0))
        summary = f"worker {state.get('worker_id')} {state.get('state')}, last beat {age:.1f} s ago"
        if age > max_age:
            raise CommandError(f"{summary} (more than {max_age:g} s): the worker is stuck or gone")
        self.stdout.write(f"{summary}; {state.get('tasks_run', 0)} tasks run")
