"""Many finished calls at once, against a real gunicorn whose own worker thread processes them meanwhile (the
embedded stack's shape): every webhook is acknowledged, every event processed. bench/faults.py measures the
same at 500 webhooks with latencies."""

import json
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from calls.models import WebhookEvent
from testkit.elevenlabs import POST_CALL_URL, encode, signed_headers, transcription_payload
from testkit.processes import Gunicorn
from tests.conftest import app_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("call_secrets")]

SENDERS = 8
CALLS = 64


def test_concurrent_webhooks_are_all_acknowledged_and_processed(settings):
    server = Gunicorn({"WEB_WORKERS": "1", **app_env(settings, TASKS_IN_PROCESS_WORKER=1)}).start()
    try:

        def send(index: int) -> int:
            body = encode(transcription_payload(conversation_id=f"conv_busy_{index}", phone=f"+1612555{index:04d}"))
            request = urllib.request.Request(
                server.url + POST_CALL_URL,
                data=body,
                headers={"Content-Type": "application/json", **signed_headers(body)},
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    assert json.loads(response.read())["status"] == "accepted"
                    return response.status
            except urllib.error.HTTPError as error:
                return error.code

        with ThreadPoolExecutor(SENDERS) as pool:
            statuses = list(pool.map(send, range(CALLS)))
        assert statuses == [200] * CALLS
        deadline = time.monotonic() + 60
        while WebhookEvent.objects.filter(status="processed").count() < CALLS and time.monotonic() < deadline:
            time.sleep(0.2)
        assert WebhookEvent.objects.filter(status="processed").count() == CALLS
    finally:
        server.stop()
