"""Periodic jobs the task worker runs between tasks: each app lists its own in `<app>.tasks.PERIODIC_JOBS`.

Found by name, like Django's admin autodiscovery, so no app imports the worker and the worker imports no app.
Jobs are short housekeeping (sampling cache statistics, re-queueing expired claims); each runs at most once per
`every_seconds` in a worker process, and several workers may run the same job: every job is idempotent.
"""

import importlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.apps import apps
from django.db import DatabaseError

logger = logging.getLogger(__name__)

JOBS_ATTRIBUTE = "PERIODIC_JOBS"


@dataclass
class PeriodicJob:
    name: str
    every_seconds: float
    function: Callable[[], object]
    next_run: float = field(default=0.0, compare=False)


def discover_jobs() -> list[PeriodicJob]:
    """Fresh copies of every installed app's periodic jobs (each worker keeps its own schedule)."""
    jobs = []
    for config in apps.get_app_configs():
        try:
            module = importlib.import_module(f"{config.name}.tasks")
        except ModuleNotFoundError as error:
            if error.name != f"{config.name}.tasks":
                raise
            continue
        for job in getattr(module, JOBS_ATTRIBUTE, ()):
            jobs.append(PeriodicJob(job.name, job.every_seconds, job.function))
    return jobs


def run_due_jobs(jobs: list[PeriodicJob], now: float | None = None) -> list[str]:
    """Run the jobs whose time has come; returns their names. A failing job is logged and runs again at its next
    time; a database error is raised, for the worker to wait out the outage."""
    now = time.monotonic() if now is None else now
    ran = []
    for job in jobs:
        if now < job.next_run:
            continue
        job.next_run = now + job.every_seconds
        try:
            job.function()
        except DatabaseError:
            raise
        except Exception:
            logger.exception("periodic job failed", extra={"job": job.name})
        ran.append(job.name)
    return ran
