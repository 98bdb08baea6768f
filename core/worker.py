"""The task worker: django-tasks-db's worker loop, plus the periodic jobs of every app.

`manage.py run_worker` runs it as its own process (production: the `worker` service of docker-compose); on the
embedded stack a daemon thread of the web process runs it (`start_in_process_worker`, on the process' first
request), so there is no second command to start.
"""

import logging
import os
import threading

from django.core.signals import request_started
from django.db import close_old_connections, connections
from django.db.utils import OperationalError
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception

from core.periodic import discover_jobs, run_due_jobs

logger = logging.getLogger(__name__)


class PlatformWorker(Worker):
    """Claims and runs tasks one at a time; between tasks it runs the periodic jobs that are due."""

    def __init__(self, *, worker_id: str, interval: float = 1.0, batch: bool = False, **options) -> None:
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
        self._wake = threading.Event()

    def run(self) -> None:
        logger.info("task worker started", extra={"worker_id": self.worker_id, "jobs": [job.name for job in self.jobs]})
        while self.running:
            close_old_connections()
            run_due_jobs(self.jobs)
            claimed, task_result = self.claim_next()
            if task_result is not None:
                self.run_task(task_result)
            elif self.batch and claimed:
                return
            if self.max_tasks is not None and self._run_tasks >= self.max_tasks:
                return
            close_old_connections()
            if self.running and task_result is None:
                self.sleep(self.interval)

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

    def sleep(self, seconds: float) -> None:
        self._wake.wait(seconds)

    def stop(self) -> None:
        """Finish the current task, then return from run() (the thread's or the command's)."""
        self.running = False
        self._wake.set()


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
    worker = PlatformWorker(worker_id=f"in-process-{os.getpid()}")

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
