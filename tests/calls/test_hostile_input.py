"""Hostile and malformed input, signed or not: every case gets a clear 4xx (or the contract's 200), never a 5xx,
and nothing that cannot be stored reaches the database."""

import json

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token

from calls.models import WebhookEvent
from memories.models import Memory
from memories.owners import default_owner
from memories.services import NewMemory, create_memory
from testkit.elevenlabs import (
    INITIATION_SECRET,
    INITIATION_URL,
    POST_CALL_URL,
    TOOL_SECRET,
    TOOL_URL,
    WEBHOOK_SECRET,
    encode,
    signed_headers,
    transcription_payload,
)
from testkit.tasks import drain_task_queue

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("call_secrets")]

DEEP = "[" * 3000 + "]" * 3000
SIGNED_BODY = encode(transcription_payload())


def post_call(client, body: bytes, signature: str | None = "sign", **extra):
    headers = signed_headers(body) if signature == "sign" else {"ElevenLabs-Signature": signature} if signature else {}
    return client.post(POST_CALL_URL, data=body, content_type="application/json", headers=headers, **extra)


@pytest.mark.parametrize(
    ("signature", "expected"),
    [
        (None, 401),
        ("", 401),
        ("t=²,v0=" + "a" * 64, 401),  # a digit to str.isdigit(), not to int()
        ("t=" + "9" * 400 + ",v0=" + "a" * 64, 401),
        ("t=1700000000,v0=ünïcode", 401),
        ("t=1700000000", 401),
        ("v0=" + "a" * 64, 401),
        ("t=99999999999,v0=" + "a" * 64, 401),  # far future
        (",,,=,t=,v0=", 401),
    ],
)
def test_post_call_signature_headers_that_are_not_ours(client, signature, expected):
    response = post_call(client, SIGNED_BODY, signature)
    assert response.status_code == expected and response.json()["error"].startswith("Rejected:")
    assert not WebhookEvent.objects.exists()


def test_a_stale_but_well_formed_signature(client):
    from calls.signatures import sign

    response = post_call(client, SIGNED_BODY, sign(SIGNED_BODY, WEBHOOK_SECRET, timestamp=1_000_000_000))
    assert response.status_code == 401 and "too old" in response.json()["error"]


def test_a_body_declared_too_big_is_refused_before_it_is_read(client, settings):
    settings.POST_CALL_MAX_BYTES = 10_000
    response = post_call(client, b"{}", CONTENT_LENGTH="1000000000")
    assert response.status_code == 413


@pytest.mark.parametrize(
    "message",
    ["I like tea\u0000 and coffee, I really do.", "I like tea \ud800 and coffee, I really do.", "\u0000" * 10],
)
def test_signed_payloads_with_nul_or_lone_surrogates_are_stored_clean_and_processed(client, message):
    payload = transcription_payload(caller_lines=(message,), summary=None, data_collection={})
    body = json.dumps(payload).encode()  # json escapes them: \u0000 and \ud800 travel as valid JSON
    response = post_call(client, body)
    assert response.status_code == 200 and response.json()["status"] == "accepted"
    drain_task_queue()
    event = WebhookEvent.objects.get()
    assert event.status in ("processed", "ignored"), event.last_error
    texts = list(Memory.objects.values_list("text", flat=True))
    assert all("\x00" not in text and "\ud800" not in text for text in texts)
    assert "\x00" not in json.dumps(event.payload)


def test_nan_and_wrong_types_in_a_signed_payload_are_tolerated(client):
    payload = transcription_payload()
    payload["data"]["metadata"]["start_time_unix_secs"] = "NaN-placeholder"
    payload["data"]["transcript"].extend([None, "text", {"role": None, "message": 5}, {"role": "user", "message": []}])
    payload["data"]["analysis"] = "not an object"
    body = json.dumps(payload).replace('"NaN-placeholder"', "NaN").encode()
    assert post_call(client, body).status_code == 200
    drain_task_queue()
    assert WebhookEvent.objects.get().status == "processed"


def tool(client, body, secret: str = TOOL_SECRET, raw: bytes | None = None, **headers):
    data = raw if raw is not None else json.dumps(body)
    headers = {"X-Memory-Secret": secret, **headers} if secret is not None else headers
    return client.post(TOOL_URL, data=data, content_type="application/json", headers=headers)


@pytest.mark.parametrize(
    ("raw", "expected_error"),
    [
        (DEEP.encode(), "Bad request: the JSON is nested too deeply."),
        (b"null", "Bad request: the body must be a JSON object."),
        (b"[1]", "Bad request: the body must be a JSON object."),
        (b"\xff\xfe", "Bad request: the body must be JSON."),
        (b'{"query": "x", "user_id": "alice", "limit": 1e309}', "Bad request: limit: A valid integer is required."),
        (b'{"query": "x", "user_id": "' + b"a" * 500 + b'"}', "Bad request: user_id:"),
        (b'{"query": "x", "user_id": "alice", "sectors": [1, 2]}', "Bad request: sectors:"),
    ],
)
def test_tool_bodies_that_cannot_be_used_are_a_short_400(client, raw, expected_error):
    response = tool(client, None, raw=raw)
    assert response.status_code == 400
    assert response.json()["error"].startswith(expected_error) and len(response.json()["error"]) < 200


@pytest.mark.parametrize("query", ["tea\u0000 time", "tea \ud800 time", "\u0000tea"])
def test_tool_queries_with_nul_or_lone_surrogates_are_answered(client, query):
    create_memory(default_owner("alice"), NewMemory("I drink green tea every afternoon"))
    response = tool(client, {"query": query, "user_id": "alice"})
    assert response.status_code == 200 and response.json()["memories"]


@pytest.mark.parametrize(
    "headers",
    [{"X-Memory-Secret": "sécret"}, {"Authorization": "Bearer sécret"}, {"Authorization": "Bearer \u2603"}],
)
def test_non_ascii_secrets_are_simply_wrong(client, headers):
    response = tool(client, {"query": "x", "user_id": "alice"}, secret=None, **headers)
    assert response.status_code == 401


@pytest.mark.parametrize(
    "raw",
    [
        DEEP.encode(),
        b"null",
        b"\xff",
        json.dumps({"caller_id": "\u0000+1612\ud8005550100", "user_id": None}).encode(),
        json.dumps({"user_id": "u" * 10_000}).encode(),
        json.dumps({"caller_id": {"nested": ["object"]}, "agent_id": 7}).encode(),
    ],
)
def test_initiation_always_answers_200_with_every_variable(client, raw):
    response = client.post(
        INITIATION_URL, data=raw, content_type="application/json", headers={"X-Memory-Secret": INITIATION_SECRET}
    )
    assert response.status_code == 200
    answer = response.json()
    assert answer["type"] == "conversation_initiation_client_data"
    assert set(answer["dynamic_variables"]) == {"user_id", "memory_context", "caller_known", "memory_count"}


def test_metrics_with_a_non_ascii_bearer_is_401(client, settings):
    settings.METRICS_TOKENS = ["scrape"]
    assert client.get("/metrics", headers={"Authorization": "Bearer scrapé"}).status_code == 401


@pytest.fixture
def staff_api(client):
    token = Token.objects.create(user=User.objects.create_user("ops", is_staff=True, is_superuser=True))
    return {"HTTP_AUTHORIZATION": f"Token {token.key}"}


@pytest.mark.parametrize("query", ["user_id=a%00b", "q=%00", "sector=%00"])
def test_operator_filters_with_nul_are_400(client, staff_api, query):
    assert client.get(f"/api/memories?{query}", **staff_api).status_code == 400


def test_forgetting_a_user_id_that_cannot_exist_is_400(client, staff_api):
    assert client.delete("/api/users/a%00b/memories", **staff_api).status_code == 400
    assert client.delete(f"/api/users/{'u' * 200}/memories", **staff_api).status_code == 400


def test_editing_a_memory_into_a_copy_of_another_is_409(client, staff_api):
    first = create_memory(default_owner("alice"), NewMemory("I live in Lisbon")).memory
    second = create_memory(default_owner("alice"), NewMemory("My dog is called Rex")).memory
    response = client.patch(
        f"/api/memories/{second.pk}", data={"text": "I live in Lisbon"}, content_type="application/json", **staff_api
    )
    assert response.status_code == 409 and str(first.pk) in response.json()["detail"]
