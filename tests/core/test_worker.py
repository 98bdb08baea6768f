"""core.worker and core.periodic: the task worker runs queued tasks and every app's periodic jobs."""

import logging

import pytest
from django.core.management import call_command

from core.periodic import PeriodicJob, discover_jobs, run_due_jobs
from embeddings.generation import generate_embeddings_batch
from embeddings.models import CacheStatsSample
from testkit.tasks import drain_task_queue


def test_apps_declare_their_periodic_jobs_and_the_worker_finds_them():
    names = {job.name for job in discover_jobs()}
    assert "sample embedding cache statistics" in names


def test_due_jobs_run_once_per_interval_and_a_failure_does_not_stop_the_others(caplog):
    calls = []

    def broken():
        raise RuntimeError("boom")

    jobs = [PeriodicJob("broken", 10, broken), PeriodicJob("counted", 10, lambda: calls.append(1))]
    with caplog.at_level(logging.ERROR, logger="core.periodic"):
        assert run_due_jobs(jobs, now=100.0) == ["broken", "counted"]
    assert "periodic job failed" in caplog.text
    assert run_due_jobs(jobs, now=105.0) == [], "not due yet"
    assert run_due_jobs(jobs, now=110.0) == ["broken", "counted"]
    assert calls == [1, 1]


@pytest.mark.django_db(transaction=True)
def test_the_worker_samples_cache_statistics_without_anyone_opening_the_admin(client):
    generate_embeddings_batch(["alpha", "beta"])
    assert not CacheStatsSample.objects.exists()
    drain_task_queue()
    sample = CacheStatsSample.objects.get()
    assert sample.misses == 2
    drain_task_queue()
    assert CacheStatsSample.objects.count() == 1, "at most one sample a minute, whichever worker asks"


def test_run_worker_has_help():
    with pytest.raises(SystemExit):
        call_command("run_worker", "--help")
