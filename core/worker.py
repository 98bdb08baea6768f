"""The task worker: django-tasks-db's claim-and-run loop, made to outlive the database, with a heartbeat and the
periodic jobs of every app.

`manage.py run_worker` runs it as its own process (production: the `worker` service of docker-compose); on the
embedded stack a daemon thread of the web process runs it (`start_in_process_worker`, on the process' first
request), so there is no second command to start.

- A database error anywhere in the loop (claiming, a task's bookkeeping, a periodic job) is an outage: logged
  once, connections dropped, retried with a doubling wait (WORKER_DATABASE_RETRY_SECONDS up to
  WORKER_DATABASE_RETRY_MAX_SECONDS), logged again when the database is back. django-tasks-db's own loop exits on
  the first one, leaving only a restart policy to hide it.
- A task whose bookkeeping was cut by the outage is marked failed once the database is back (its work is
  idempotent and owned by its app: an event's expired lease brings it back, see calls.tasks).
- A heartbeat thread writes the worker's state every WORKER_HEARTBEAT_SECONDS to its `WorkerHeartbeat` row and,
  for `run_worker`, to a file the container healthcheck reads (`manage.py worker_health`): the file keeps
  beating while the database is away, so an outage does not make the worker look dead.
"""

import json
import logging
import os
import socket
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.signals import request_started
from django.db import DatabaseError, close_old_connections, connections
from django.db.utils import InterfaceError, OperationalError
from django.utils import timezone
from django_tasks.base import TaskResultStatus
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception

from core.models import WorkerHeartbeat
from core.periodic import discover_jobs, run_due_jobs

logger = logging.getLogger(__name__)

DATABASE_ERRORS = (DatabaseError, InterfaceError)


class PlatformWorker(Worker):
    """Claims and runs tasks one at a time; between tasks it runs the periodic jobs that are due."""

    def __init__(
        self,
        *,
        worker_id: str,
        interval: float = 1.0,
        batch: bool = False,
        heartbeat_file: Path | None = None,
        **options,
    ) -> None:
        options = {
            "queue_names": ["*"],
            "backend_name": "default",
            "startup_delay": False,
            "max_tasks": None,
            "excluded_queue_names": [],
            **options,
        }
        super().__init__(worker_id=worker_id, interval=interval, batch=batch, **options)
        self.jobs = discover_jobs()
        self.state = WorkerHeartbeat.State.RUNNING
        self.current_task = ""
        self.interrupted_task = ""  # a task whose bookkeeping a database outage cut short
        self._wake = threading.Event()
        self.heartbeat = Heartbeat(self, heartbeat_file)

    def run(self) -> None:
        logger.info("task worker started", extra={"worker_id": self.worker_id, "jobs": [job.name for job in self.jobs]})
        self.heartbeat.start()
        outage: Outage | None = None
        try:
            while self.running:
                try:
                    if outage is not None:
                        self.recover(outage)
                        outage = None
                    if self.step():
                        return
                except DATABASE_ERRORS as error:
                    outage = outage or Outage(self.worker_id, error)
                    self.state = WorkerHeartbeat.State.DATABASE_DOWN
                    connections.close_all()
                    self.sleep(outage.next_wait())
        finally:
            self.state = WorkerHeartbeat.State.STOPPED
            self.heartbeat.stop()
            logger.info("task worker stopped", extra={"worker_id": self.worker_id, "tasks_run": self._run_tasks})

    def step(self) -> bool:
        """One turn of the loop; True when the worker is done (batch mode, or max tasks reached)."""
        close_old_connections()
        run_due_jobs(self.jobs)
        claimed, task_result = self.claim_next()
        if task_result is not None:
            self.current_task = str(task_result.id)
            self.run_task(task_result)
            self.current_task = ""
        elif self.batch and claimed:
            return True
        if self.max_tasks is not None and self._run_tasks >= self.max_tasks:
            return True
        close_old_connections()
        if self.running and task_result is None:
            self.sleep(self.interval)
        return False

    def claim_next(self) -> tuple[bool, DBTaskResult | None]:
        """(asked the queue, the task claimed or None). A locked SQLite database counts as not asked."""
        tasks = DBTaskResult.objects.ready().filter(backend_name=self.backend_name)
        if not self.process_all_queues:
            tasks = tasks.filter(queue_name__in=self.queue_names)
        if self.excluded_queue_names:
            tasks = tasks.exclude(queue_name__in=self.excluded_queue_names)
        with exclusive_transaction(tasks.db):
            try:
                task_result = tasks.get_locked()
            except OperationalError as error:
                if is_locked_database_exception(error):
                    return False, None
                raise
            if task_result is not None:
                task_result.claim(self.worker_id)
        return True, task_result

    def run_task(self, db_task_result: DBTaskResult) -> None:
        try:
            super().run_task(db_task_result)
        except DATABASE_ERRORS:
            self.interrupted_task = str(db_task_result.id)
            raise

    def recover(self, outage: "Outage") -> None:
        """The database answers again: close the books of a task the outage interrupted, say so once."""
        if self.interrupted_task:
            DBTaskResult.objects.filter(id=self.interrupted_task, status=TaskResultStatus.RUNNING).update(
                status=TaskResultStatus.FAILED,
                finished_at=timezone.now(),
                exception_class_path="django.db.utils.OperationalError",
                traceback=f"the database went away while worker {self.worker_id} ran this task",
            )
            self.interrupted_task = ""
        self.state = WorkerHeartbeat.State.RUNNING
        outage.over()

    def sleep(self, seconds: float) -> None:
        self._wake.wait(seconds)

    def stop(self) -> None:
        """Finish the current task, then return from run() (the thread's or the command's)."""
        self.running = False
        self._wake.set()


class Outage:
    """One database outage as the worker lives it: logged when it starts and when it ends, waits that double."""

    def __init__(self, worker_id: str, error: BaseException) -> None:
        self.worker_id = worker_id
        self.started = time.monotonic()
        self.wait = settings.WORKER_DATABASE_RETRY_SECONDS
        logger.warning(
            "database unavailable; the worker waits for it",
            extra={"worker_id": worker_id, "error": f"{type(error).__name__}: {error}"[:300]},
        )

    def next_wait(self) -> float:
        wait, self.wait = self.wait, min(self.wait * 2, settings.WORKER_DATABASE_RETRY_MAX_SECONDS)
        return wait

    def over(self) -> None:
        seconds = round(time.monotonic() - self.started, 1)
        logger.warning(
            "database back; the worker goes on", extra={"worker_id": self.worker_id, "outage_seconds": seconds}
        )


class Heartbeat:
    """A daemon thread that records the worker's state every WORKER_HEARTBEAT_SECONDS, tasks or no tasks."""

    def __init__(self, worker: PlatformWorker, path: Path | None) -> None:
        self.worker = worker
        self.path = path
        self.started_at = timezone.now()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.beat()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{self.worker.worker_id}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.beat()

    def _run(self) -> None:
        try:
            while not self._stop.wait(settings.WORKER_HEARTBEAT_SECONDS):
                self.beat()
        finally:
            connections.close_all()

    def beat(self) -> None:
        state = {
            "worker_id": self.worker.worker_id,
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "state": self.worker.state,
            "tasks_run": self.worker._run_tasks,
            "current_task": self.worker.current_task,
        }
        if self.path is not None:
            write_heartbeat_file(self.path, {**state, "beat_at": time.time()})
        try:
            WorkerHeartbeat.objects.update_or_create(
                worker_id=state.pop("worker_id"),
                defaults={**state, "started_at": self.started_at, "beat_at": timezone.now()},
            )
        except DATABASE_ERRORS:
            connections.close_all()  # the database is away; the file (if any) still says we are alive


def write_heartbeat_file(path: Path, state: dict) -> None:
    """Replace the file atomically, so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(state))
    partial.replace(path)


def read_heartbeat_file(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


_started_in_pid: int | None = None
_running: tuple[threading.Thread, PlatformWorker] | None = None
_lock = threading.Lock()


def start_in_process_worker(**kwargs) -> threading.Thread | None:
    """Start the worker thread once per process; returns it (None if this process already has one)."""
    global _started_in_pid, _running
    with _lock:
        if _started_in_pid == os.getpid():
            return None
        _started_in_pid = os.getpid()
    worker = PlatformWorker(worker_id=f"in-process-{socket.gethostname()}-{os.getpid()}"[:64])

    def run() -> None:
        try:
            worker.run()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name="task-worker", daemon=True)
    _running = (thread, worker)
    thread.start()
    logger.info("in-process task worker started", extra={"pid": os.getpid()})
    return thread


def stop_in_process_worker(timeout: float = 10) -> None:
    """Stop this process' worker thread after its current task (tests; a server just exits)."""
    global _started_in_pid, _running
    if _running is None:
        return
    thread, worker = _running
    worker.stop()
    thread.join(timeout)
    _running, _started_in_pid = None, None


def connect_in_process_worker() -> None:
    request_started.connect(start_in_process_worker, dispatch_uid="core-in-process-worker")
