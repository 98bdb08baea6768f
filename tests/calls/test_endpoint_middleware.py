"""The ElevenLabs endpoints skip the middleware only people's pages need (calls.middleware) and keep what the rest
of the chain gave them: request id, metrics, security headers, ALLOWED_HOSTS, the database outage's answer."""

import json

import pytest
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.db import OperationalError, connections

from calls import views
from calls.middleware import ElevenLabsEndpointsMiddleware
from core.requests import REQUESTS
from testkit.elevenlabs import INITIATION_URL, POST_CALL_URL, REMEMBER_URL, TOOL_SECRET, TOOL_URL

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("call_secrets")]


def ask(client, **extra):
    body = json.dumps({"query": "my dog", "user_id": "alice"})
    return client.post(
        TOOL_URL, data=body, content_type="application/json", headers={"X-Memory-Secret": TOOL_SECRET}, **extra
    )


@pytest.fixture
def session_and_message_calls(monkeypatch):
    calls = []
    for middleware in (SessionMiddleware, MessageMiddleware):
        original = middleware.process_request

        def counted(self, request, original=original, name=middleware.__name__):
            calls.append(name)
            return original(self, request)

        monkeypatch.setattr(middleware, "process_request", counted)
    return calls


def test_the_endpoints_are_the_sync_views_of_calls_urls():
    paths = set(ElevenLabsEndpointsMiddleware(lambda request: None).matches())
    assert paths == {TOOL_URL, REMEMBER_URL, INITIATION_URL, POST_CALL_URL}  # the Custom LLM's are async


def test_the_tool_skips_sessions_and_messages_the_admin_still_has_them(client, session_and_message_calls):
    response = ask(client)
    assert response.status_code == 200 and "memories" in response.json()
    assert session_and_message_calls == []
    assert not hasattr(response.wsgi_request, "session") and not hasattr(response.wsgi_request, "user")
    client.get("/admin/login/")
    assert session_and_message_calls == ["SessionMiddleware", "MessageMiddleware"]


def test_the_tool_keeps_request_id_security_headers_and_metrics(client):
    route = REQUESTS.labels(TOOL_URL, "POST", "200")
    before = route._value.get()
    response = ask(client, HTTP_X_REQUEST_ID="lb-1234")
    assert response["X-Request-ID"] == "lb-1234"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert route._value.get() == before + 1, "counted under its route, not as unmatched"


def test_answers_carry_their_length(client):
    """As CommonMiddleware gave them: without it gunicorn chunks the answer, and closes the connection after every
    answer to an HTTP/1.0 client (nginx's default towards an upstream)."""
    for response in (ask(client), client.get(TOOL_URL)):
        assert response["Content-Length"] == str(len(response.content))


def test_with_atomic_requests_the_endpoints_take_djangos_handler():
    saved = {alias: connections[alias].settings_dict.get("ATOMIC_REQUESTS") for alias in connections}
    try:
        for alias in connections:
            connections[alias].settings_dict["ATOMIC_REQUESTS"] = True
        assert ElevenLabsEndpointsMiddleware(lambda request: None).matches() == {}
    finally:
        for alias, value in saved.items():
            connections[alias].settings_dict["ATOMIC_REQUESTS"] = value


def test_the_tool_refuses_hosts_not_allowed(client, settings):
    settings.ALLOWED_HOSTS = ["memory.example.com"]
    assert ask(client, HTTP_HOST="memory.example.com").status_code == 200
    assert ask(client, HTTP_HOST="evil.example.net").status_code == 400


def test_the_tool_keeps_its_answers_to_wrong_methods_and_unknown_paths(client):
    assert client.get(TOOL_URL).status_code == 405
    response = client.post(TOOL_URL + "/", data="{}", content_type="application/json")
    assert response.status_code == 404 and "Not found" in response.json()["detail"]


def test_a_database_outage_is_answered_in_one_sentence(client, monkeypatch):
    def unavailable(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(views, "admit", unavailable)
    response = ask(client)
    assert response.status_code == 503
    assert response.json() == {"error": "The database is unavailable right now; try again shortly."}
    assert response["Retry-After"] == "5" and "X-Request-ID" in response
