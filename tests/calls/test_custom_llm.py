"""POST /v1/chat/completions, ElevenLabs' Custom LLM: memories added to the system message, the real LLM's stream
relayed as SSE. Served by the real ASGI server (gunicorn + uvicorn workers) in front of a fake upstream LLM that
streams at a fixed pace, driven by the real `openai` client as ElevenLabs would."""

import json
import socket
import time
import urllib.error
import urllib.request

import openai
import pytest

from calls.custom_llm import MEMORY_HEADER
from memories.owners import default_owner
from memories.services import NewMemory, create_memory
from testkit.elevenlabs import LLM_SECRET, TOOL_SECRET
from testkit.fake_openai import FakeOpenAIServer
from testkit.processes import AsgiServer
from tests.conftest import app_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("call_secrets")]

SYSTEM = "You are Ava from Acme support.\nmemory_user_id: alice"
QUESTION = "What is the name of my dog again?"


@pytest.fixture
def upstream(settings):
    server = FakeOpenAIServer(dimensions=settings.EMBEDDING_DIMENSIONS).start()
    yield server
    server.stop()


@pytest.fixture
def asgi(settings, upstream, tmp_path):
    """The ASGI server on this test's database, forwarding to the fake upstream; `start(**env)` to change it."""
    servers = []

    def start(**overrides) -> AsgiServer:
        env = app_env(
            settings,
            CUSTOM_LLM_BASE_URL=upstream.base_url,
            CUSTOM_LLM_API_KEY="sk-upstream",
            ELEVENLABS_LLM_SECRETS=LLM_SECRET,
            **overrides,
        )
        server = AsgiServer(env, log_path=tmp_path / f"asgi-{len(servers)}.log").start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def alice():
    for text in ("My dog is called Rex", "I prefer email over phone calls", "I live in Lyon"):
        create_memory(default_owner("alice"), NewMemory(text))


def client_for(server, key: str = LLM_SECRET) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=20)


def ask(server, messages, **extra):
    return client_for(server).chat.completions.create(
        model="gpt-4o-mini", messages=messages, stream=True, **({"extra_body": extra} if extra else {})
    )


def test_memories_reach_the_system_message_and_the_stream_comes_back_whole(asgi, upstream, alice):
    server = asgi()
    stream = ask(server, [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}])
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "".join(upstream.stream_words)

    sent = upstream.chat_requests[-1]
    system = sent["body"]["messages"][0]["content"]
    assert system.startswith(SYSTEM) and MEMORY_HEADER in system and "- My dog is called Rex" in system
    assert sent["body"]["messages"][1] == {"role": "user", "content": QUESTION}
    assert sent["body"]["stream"] is True and sent["body"]["model"] == "gpt-4o-mini"
    headers = {name.lower(): value for name, value in sent["headers"].items()}
    assert headers["authorization"] == "Bearer sk-upstream"  # our key upstream, never the agent's


def test_the_wire_format_is_what_elevenlabs_expects(asgi, alice):
    server = asgi()
    body = {
        "model": "gpt-4o-mini",
        "stream": True,
        "messages": [{"role": "user", "content": QUESTION}],
        "user_id": "alice",
        "elevenlabs_extra_body": {"channel": "phone"},
    }
    request = urllib.request.Request(
        f"{server.url}/v1/chat/completions",
        json.dumps(body).encode(),
        {"Content-Type": "application/json", "Authorization": f"Bearer {LLM_SECRET}"},
    )
    with urllib.request.urlopen(request, timeout=20) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        raw = response.read().decode()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    chunks = [json.loads(event.removeprefix("data: ")) for event in events[:-2]]
    assert all(event.startswith("data: ") for event in events[:-1])
    assert chunks[0]["object"] == "chat.completion.chunk" and chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_elevenlabs_fields_are_read_not_forwarded_and_a_user_id_field_finds_the_caller(asgi, upstream, alice):
    server = asgi()
    list(ask(server, [{"role": "user", "content": QUESTION}], user_id="alice", elevenlabs_extra_body={"a": 1}))
    sent = upstream.chat_requests[-1]["body"]
    assert "user_id" not in sent and "elevenlabs_extra_body" not in sent
    assert sent["messages"][0]["role"] == "system" and "My dog is called Rex" in sent["messages"][0]["content"]


def test_tool_calls_stream_through(asgi, upstream, alice):
    upstream.stream_tool_call = {"name": "transfer_to_human", "arguments": '{"reason": "billing"}'}
    server = asgi()
    chunks = list(ask(server, [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "a human, please"}]))
    calls = [call for chunk in chunks for call in (chunk.choices[0].delta.tool_calls or [])]
    assert [(call.function.name, call.function.arguments) for call in calls] == [
        ("transfer_to_human", '{"reason": "billing"}')
    ]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_without_a_known_caller_the_request_goes_on_unchanged(asgi, upstream, alice):
    server = asgi()
    messages = [{"role": "system", "content": "You are Ava."}, {"role": "user", "content": QUESTION}]
    list(ask(server, messages))
    assert upstream.chat_requests[-1]["body"]["messages"] == messages
    list(ask(server, [{"role": "system", "content": "memory_user_id: nobody"}, {"role": "user", "content": QUESTION}]))
    assert MEMORY_HEADER not in upstream.chat_requests[-1]["body"]["messages"][0]["content"]


def test_a_slow_memory_lookup_never_holds_the_turn(asgi, upstream, alice, settings):
    slow_embeddings = FakeOpenAIServer(dimensions=settings.EMBEDDING_DIMENSIONS).start()
    slow_embeddings.delay = 3.0
    try:
        server = asgi(
            EMBEDDING_PROVIDER="openai",
            OPENAI_BASE_URL=slow_embeddings.base_url,
            OPENAI_API_KEY="sk-embed",
            EMBEDDING_MODEL="text-embedding-3-small",
            CUSTOM_LLM_MEMORY_BUDGET_SECONDS="0.2",
        )
        started = time.monotonic()
        text = "".join(
            chunk.choices[0].delta.content or ""
            for chunk in ask(server, [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "brand new?"}])
            if chunk.choices
        )
        assert time.monotonic() - started < 2.0 and text == "".join(upstream.stream_words)
        assert MEMORY_HEADER not in upstream.chat_requests[-1]["body"]["messages"][0]["content"]
    finally:
        slow_embeddings.stop()


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "The body must be JSON"),
        (b"[]", 400, "The body must be a JSON object."),
        (b'{"model": "m"}', 400, "messages: a non-empty list"),
        (b'{"messages": [{"role": "user", "content": "hi"}]}', 400, "model: a model name"),
        (b'{"model": "m", "messages": ["hi"]}', 400, "messages[0]: each message"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"}', 400, "stream: must be"),
    ],
)
def test_bad_requests_get_openai_shaped_errors(asgi, body, status, message):
    server = asgi()
    request = urllib.request.Request(
        f"{server.url}/v1/chat/completions", body, {"Authorization": f"Bearer {LLM_SECRET}"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    error = json.loads(refused.value.read())["error"]
    assert refused.value.code == status and error["message"].startswith(message)
    assert error["type"] == "invalid_request_error"


def test_a_wrong_key_is_401_and_upstream_errors_come_back_in_openai_shape(asgi, upstream):
    server = asgi()
    with pytest.raises(openai.AuthenticationError):
        client_for(server, key="wrong").chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    upstream.fail_next = [429]
    with pytest.raises(openai.RateLimitError) as limited:
        ask(server, [{"role": "user", "content": "x"}])
    assert "The language model answered 429: fake failure" in str(limited.value)
    assert not upstream.fail_next


def test_an_upstream_that_does_not_answer_in_time_is_a_504(asgi, upstream):
    upstream.delay = 3.0
    server = asgi(CUSTOM_LLM_TIMEOUT="1")
    with pytest.raises(openai.APIStatusError) as timed_out:
        ask(server, [{"role": "user", "content": "x"}])
    assert timed_out.value.status_code == 504


def test_a_client_hanging_up_mid_stream_cancels_the_upstream_stream(asgi, upstream, alice):
    upstream.stream_words = [f" word{index}" for index in range(40)]
    upstream.stream_interval = 0.1
    server = asgi()
    body = json.dumps({"model": "m", "stream": True, "messages": [{"role": "user", "content": QUESTION}]}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {LLM_SECRET}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        received = b""
        while b"data: " not in received:  # until the stream has begun
            received += connection.recv(65536)
    deadline = time.monotonic() + 5
    while upstream.streams_abandoned == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert upstream.streams_abandoned == 1  # the upstream request was dropped, not read to its end


def test_the_other_endpoints_work_under_the_asgi_server(asgi, alice):
    server = asgi()
    with urllib.request.urlopen(f"{server.url}/healthz", timeout=10) as response:
        assert response.status == 200
    request = urllib.request.Request(
        f"{server.url}/tools/memory-query",
        json.dumps({"query": "dog", "user_id": "alice"}).encode(),
        {"Content-Type": "application/json", "X-Memory-Secret": TOOL_SECRET},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert "Rex" in json.loads(response.read())["memories"][0]["text"]
        assert response.headers["X-Request-ID"]


def test_the_responses_api_gets_memories_in_its_instructions_and_streams_back_whole(asgi, upstream, alice):
    """ElevenLabs' Custom LLM may speak OpenAI's Responses API instead: /v1/responses, memories in `instructions`."""
    server = asgi()
    stream = client_for(server).responses.create(
        model="gpt-4o-mini",
        instructions=SYSTEM,
        input=[{"role": "user", "content": [{"type": "input_text", "text": QUESTION}]}],
        stream=True,
    )
    events = list(stream)
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert text == "".join(upstream.stream_words) and events[-1].type == "response.completed"

    sent = [request for request in upstream.requests if request["path"].endswith("/responses")][-1]["body"]
    assert sent["instructions"].startswith(SYSTEM) and "- My dog is called Rex" in sent["instructions"]
    assert sent["input"][0]["content"][0]["text"] == QUESTION and sent["stream"] is True


def test_the_responses_api_wire_format_and_errors(asgi, upstream, alice):
    server = asgi()

    def post(body: dict, key: str = LLM_SECRET) -> tuple[int, str]:
        request = urllib.request.Request(
            f"{server.url}/v1/responses",
            json.dumps(body).encode(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    status, raw = post({"model": "gpt-4o-mini", "input": QUESTION, "user_id": "alice", "stream": True})
    assert status == 200 and "data: [DONE]" not in raw  # the Responses API ends with response.completed
    assert raw.startswith("event: response.created\ndata: {") and "event: response.completed" in raw
    sent = [request for request in upstream.requests if request["path"].endswith("/responses")][-1]["body"]
    assert "user_id" not in sent and "My dog is called Rex" in sent["instructions"]

    status, raw = post({"model": "gpt-4o-mini", "input": QUESTION})  # not streamed: the response object
    assert status == 200 and json.loads(raw)["output"][0]["content"][0]["text"] == "".join(upstream.stream_words)
    for body, words in (
        ({"model": "gpt-4o-mini"}, "input"),
        ({"model": "gpt-4o-mini", "input": [5]}, "input[0]"),
        ({"model": "gpt-4o-mini", "input": "hi", "instructions": 7}, "instructions"),
        ({"input": "hi"}, "model"),
    ):
        status, raw = post(body)
        assert status == 400 and words in json.loads(raw)["error"]["message"]
    status, raw = post({"model": "gpt-4o-mini", "input": "hi"}, key="wrong")
    assert status == 401 and json.loads(raw)["error"]["type"] == "authentication_error"


@pytest.mark.parametrize("long_lived", [False, True])
def test_a_lookups_connection_is_kept_only_by_a_long_lived_event_loop(long_lived, monkeypatch):
    """Under the ASGI server the lookup threads live as long as the process and keep their connection for the next
    turns; through Django's handler (WSGI, runserver) each request's event loop and its threads end with it, so the
    connection is closed rather than left open until garbage collection."""
    import asyncio

    from django.db import connections

    from calls.custom_llm import LONG_LIVED_LOOP, in_worker_thread

    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 60)  # whatever the environment says

    def lookup():
        own = connections["default"]  # the worker thread's own connection, not a proxy to the caller's
        own.ensure_connection()
        return own

    async def turn():
        LONG_LIVED_LOOP.set(long_lived)
        return await in_worker_thread(lookup)()

    used = asyncio.run(turn())
    try:
        assert (used.connection is not None) is long_lived
    finally:
        used.inc_thread_sharing()  # its thread is gone; close what it kept from here
        used.close()
