"""The task worker inside the web process, for the embedded stack (no second command to start).

django-tasks-db's own Worker loop runs in a daemon thread, started on the process' first request. In
production `manage.py db_worker` runs as its own process instead (TASKS_IN_PROCESS_WORKER=0).
"""

import logging
import os
import threading

from django.core.signals import request_started

logger = logging.getLogger(__name__)

_started_in_pid: int | None = None
_running: tuple[threading.Thread, object] | None = None
_lock = threading.Lock()


def start_in_process_worker(**kwargs) -> threading.Thread | None:
    """Start the worker thread once per process; returns it (None if this process already has one)."""
    global _started_in_pid, _running
    with _lock:
        if _started_in_pid == os.getpid():
            return None
        _started_in_pid = os.getpid()
    from django.db import connections
    from django_tasks_db.management.commands.db_worker import Worker

    worker = Worker(
        queue_names=["*"],
        interval=1.0,
        batch=False,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id=f"in-process-{os.getpid()}",
        excluded_queue_names=[],
    )

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
    worker.running = False
    thread.join(timeout)
    _running, _started_in_pid = None, None


def connect() -> None:
    request_started.connect(start_in_process_worker, dispatch_uid="memories-in-process-worker")
