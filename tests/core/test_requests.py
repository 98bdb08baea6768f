"""Every request gets an id, a JSON access line and per-endpoint metrics; under gunicorn, from every worker."""

import io
import json
import logging
import re
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from memoryplatform.logging import JSONFormatter
from testkit.elevenlabs import TOOL_SECRET, TOOL_URL
from testkit.processes import Gunicorn
from tests.conftest import app_env
from tests.factories import make_staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def access_lines():
    """The access log as the production formatter writes it, one JSON object per line."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    logger = logging.getLogger("memoryplatform.access")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def sample(metrics: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text, 0 when absent."""
    for line in metrics.splitlines():
        if line.startswith(name + "{"):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
            if all(found.get(key) == value for key, value in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_every_response_carries_a_request_id_and_a_sane_given_one_is_kept(client, access_lines):
    fresh = client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", fresh["X-Request-ID"])
    assert client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.42"})["X-Request-ID"] == "lb-7f3a.42"
    hostile = client.get("/healthz", headers={"X-Request-ID": "x" * 65})["X-Request-ID"]
    assert hostile != "x" * 65 and re.fullmatch(r"[0-9a-f]{32}", hostile)
    lines = access_lines()
    assert [line["request_id"] for line in lines] == [fresh["X-Request-ID"], "lb-7f3a.42", hostile]
    assert lines[0]["level"] == "DEBUG"  # health probes do not drown the log


def test_the_access_line_is_json_with_route_status_and_duration(client, access_lines, call_secrets):
    response = client.post(
        TOOL_URL,
        {"user_id": "alice", "query": "anything"},
        content_type="application/json",
        headers={"X-Memory-Secret": TOOL_SECRET, "X-Request-ID": "call-1"},
    )
    assert response.status_code == 200
    client.get("/api/nothing-here")
    tool, missing = access_lines()
    assert tool["message"] == "request" and tool["level"] == "INFO" and tool["request_id"] == "call-1"
    assert (tool["method"], tool["path"], tool["status"]) == ("POST", TOOL_URL, 200)
    assert tool["route"] == TOOL_URL and tool["duration_ms"] > 0
    assert (missing["route"], missing["status"]) == ("unmatched", 404)


def test_metrics_count_each_endpoint_by_status_and_time_it(client, call_secrets):
    staff = make_staff("ops")
    before = client.get("/metrics")  # anonymous: refused, and counted
    assert before.status_code in (401, 403)
    client.force_login(staff)
    start = client.get("/metrics").content.decode()
    for _ in range(3):
        client.post(
            TOOL_URL,
            {"user_id": "alice", "query": "q"},
            content_type="application/json",
            headers={"X-Memory-Secret": TOOL_SECRET},
        )
    client.post(
        TOOL_URL, {"user_id": "alice"}, content_type="application/json", headers={"X-Memory-Secret": TOOL_SECRET}
    )
    end = client.get("/metrics").content.decode()
    labels = {"route": TOOL_URL, "method": "POST"}
    assert (
        sample(end, "http_requests_total", status="200", **labels)
        - sample(start, "http_requests_total", status="200", **labels)
        == 3
    )
    assert (
        sample(end, "http_requests_total", status="400", **labels)
        - sample(start, "http_requests_total", status="400", **labels)
        == 1
    )
    count = sample(end, "http_request_duration_seconds_count", **labels) - sample(
        start, "http_request_duration_seconds_count", **labels
    )
    assert count == 4
    assert sample(end, "http_request_duration_seconds_bucket", le="+Inf", **labels) >= 4


def test_request_metrics_can_be_turned_off(client, settings):
    settings.REQUEST_METRICS = False
    client.force_login(make_staff("ops"))
    start = client.get("/metrics").content.decode()
    client.get("/healthz")
    end = client.get("/metrics").content.decode()
    labels = {"route": "/healthz", "method": "GET", "status": "200"}
    assert sample(end, "http_requests_total", **labels) == sample(start, "http_requests_total", **labels)


@pytest.mark.django_db(transaction=True)
def test_under_gunicorn_metrics_add_up_every_worker_and_logs_are_json(settings, tmp_path):
    log = tmp_path / "gunicorn.log"
    env = app_env(settings, WEB_WORKERS="2", WEB_THREADS="2", METRICS_TOKEN="scrape-token", LOG_LEVEL="INFO")
    with Gunicorn(env, log_path=log) as server:

        def anonymous(index: int) -> tuple[int, str]:
            request = urllib.request.Request(f"{server.url}/api/memories", headers={"X-Request-ID": f"r-{index}"})
            try:
                urllib.request.urlopen(request, timeout=5)
            except urllib.error.HTTPError as error:
                return error.code, error.headers["X-Request-ID"]
            return 200, ""

        with ThreadPoolExecutor(8) as pool:  # concurrent, so both workers take some
            answers = list(pool.map(anonymous, range(40)))
        assert answers == [(401, f"r-{index}") for index in range(40)]
        scrape = urllib.request.Request(f"{server.url}/metrics", headers={"Authorization": "Bearer scrape-token"})
        metrics = urllib.request.urlopen(scrape, timeout=5).read().decode()
    assert sample(metrics, "http_requests_total", route="/api/memories", method="GET", status="401") == 40
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    access = [
        line for line in lines if line.get("logger") == "memoryplatform.access" and line["route"] == "/api/memories"
    ]
    assert sorted(line["request_id"] for line in access) == sorted(f"r-{index}" for index in range(40))
    assert all(line["status"] == 401 and line["method"] == "GET" for line in access)
