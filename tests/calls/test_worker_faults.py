"""Faults of the background path, with real worker processes: killed mid-event, the database cut and refused.

What must hold: every acknowledged event ends processed exactly once, by the workers alone (no operator step,
no restart), and nothing is stored twice.
"""

import time

import pytest
from django.db import connection
from django_tasks_db.models import DBTaskResult

from calls.models import WebhookEvent
from core.models import WorkerHeartbeat
from core.worker import read_heartbeat_file
from memories.models import Memory
from testkit.elevenlabs import POST_CALL_URL, encode, signed_headers, transcription_payload
from testkit.tcp_proxy import TCPProxy
from tests.conftest import database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("call_secrets")]

# Short clocks, so a lost claim comes back within seconds instead of the production five minutes.
FAST = {
    "WEBHOOK_LEASE_SECONDS": 2,
    "WEBHOOK_SWEEP_SECONDS": 0.3,
    "WEBHOOK_REQUEUE_AFTER_SECONDS": 1,
    "WEBHOOK_RETRY_BASE_SECONDS": 0.2,
    "WORKER_HEARTBEAT_SECONDS": 0.3,
    "WORKER_STALE_SECONDS": 2,
    "WORKER_DATABASE_RETRY_SECONDS": 0.2,
    "WORKER_DATABASE_RETRY_MAX_SECONDS": 1,
    "EMBEDDING_REQUEST_TIMEOUT": 30,
}


def deliver(client, conversation: str, user: str) -> int:
    body = encode(transcription_payload(conversation_id=conversation, user_id=user, phone=None))
    response = client.post(POST_CALL_URL, data=body, content_type="application/json", headers=signed_headers(body))
    assert response.status_code == 200
    return response.json()["event_id"]


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting until {what}")


def status(event_id: int) -> str:
    return WebhookEvent.objects.values_list("status", flat=True).get(pk=event_id)


def assert_stored_once(user: str) -> None:
    texts = list(Memory.objects.filter(user_id=user).values_list("text", flat=True))
    assert texts and len(texts) == len(set(texts)), "every memory once"


def test_a_worker_killed_mid_event_leaves_nothing_stranded(client, fake_openai, worker_processes):
    event_id = deliver(client, "conv_killed", "usr_killed")
    fake_openai.delay = 30  # the embedding request hangs: the worker is killed while it waits
    first = worker_processes(**FAST)
    wait_for(lambda: status(event_id) == "processing", 20, "the first worker claimed the event")
    wait_for(lambda: fake_openai.embedding_requests, 10, "the first worker asked the provider")
    first.kill()
    assert status(event_id) == "processing", "nothing moves while no worker runs"

    fake_openai.delay = 0
    second = worker_processes(**FAST)
    wait_for(lambda: status(event_id) == "processed", 30, "the second worker processed the event")
    event = WebhookEvent.objects.get(pk=event_id)
    assert event.attempts == 2 and event.memories_created > 0
    assert Memory.objects.filter(user_id="usr_killed").count() == event.memories_created
    assert_stored_once("usr_killed")
    # The killed worker's task was left "running"; the second one closes its books once it stops beating.
    wait_for(
        lambda: not DBTaskResult.objects.filter(status="RUNNING").exists(), 15, "the abandoned task is marked failed"
    )
    assert DBTaskResult.objects.filter(status="FAILED", exception_class_path="core.worker.WorkerGone").count() == 1
    assert second.alive()


@pytest.mark.postgres
def test_the_worker_waits_out_database_outages_and_loses_nothing(client, worker_processes, settings):
    database = connection.settings_dict
    with TCPProxy(database["HOST"] or "127.0.0.1", int(database["PORT"] or 5432)) as proxy:
        url = database_url().replace(f":{database['PORT'] or 5432}/", f":{proxy.port}/")
        events = [deliver(client, f"conv_outage_{index}", f"usr_outage_{index}") for index in range(6)]
        worker = worker_processes(DATABASE_URL=url, **FAST)
        wait_for(lambda: status(events[0]) == "processed", 30, "the worker processed the first event")
        more = [deliver(client, f"conv_outage_{index}", f"usr_outage_{index}") for index in range(6, 12)]

        # Connections reset mid-session and new ones refused for a while, as during a PostgreSQL restart: one call
        # (cut() then refuse() left a moment in which the worker could reconnect, and log a second outage).
        proxy.refuse()
        time.sleep(3)
        assert worker.alive(), "the worker does not exit on a database outage"
        beat = read_heartbeat_file(__import__("pathlib").Path(worker.heartbeat_file))
        assert beat["state"] == WorkerHeartbeat.State.DATABASE_DOWN and time.time() - beat["beat_at"] < 2
        proxy.restore()

        wait_for(lambda: all(status(event) == "processed" for event in events + more), 40, "every event is processed")
        assert worker.alive()
        worker.stop()
    for index in range(12):
        assert_stored_once(f"usr_outage_{index}")
    assert worker.output.count("database unavailable; the worker waits for it") == 1, worker.output[-3000:]
    assert worker.output.count("database back; the worker goes on") == 1
