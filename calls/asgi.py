"""The Custom LLM endpoints' fast path under ASGI: `/v1/chat/completions` and `/v1/responses` straight to
calls.custom_llm, every other path to Django.

Under ASGI, each of Django's middlewares (sessions, CSRF, auth, messages, ...) hops to a single shared thread and
back; 32 concurrent turns then queued behind each other (about 180 ms added to the first token, memories or
not). This path reads the request, answers and streams with plain ASGI messages, and keeps what the middleware
would have given it: a request id, the access line and the request metrics. A client that disconnects cancels
the stream, which closes the upstream request.
"""

import asyncio
import json
import time

from django.conf import settings
from django.http.request import HttpHeaders

from calls.custom_llm import CHAT, LONG_LIVED_LOOP, RESPONSES, STREAM_HEADERS, complete, failure
from core.request_context import REQUEST_ID
from core.requests import observe, sane_request_id

APIS = {"/v1/chat/completions": CHAT, "/v1/responses": RESPONSES}  # path (also the metrics' route) -> API


class ScopeRequest:
    """What calls.custom_llm reads of a request (its headers), from an ASGI scope."""

    def __init__(self, scope: dict):
        meta = {}
        for raw_name, raw_value in scope.get("headers", []):
            name = raw_name.decode("latin-1").upper().replace("-", "_")
            key = name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{name}"
            meta[key] = raw_value.decode("latin-1")
        self.headers = HttpHeaders(meta)
        self.user = None


def route(django_application):
    """The ASGI application: the fast path for the Custom LLM endpoint, Django for everything else."""

    async def application(scope, receive, send):
        if scope["type"] == "http" and scope["path"] in APIS:
            await custom_llm_turn(scope, receive, send)
        else:
            await django_application(scope, receive, send)

    return application


async def custom_llm_turn(scope, receive, send) -> None:
    started = time.perf_counter()
    request = ScopeRequest(scope)
    request_id = sane_request_id(request.headers.get("X-Request-ID", ""))
    token, loop_token = REQUEST_ID.set(request_id), LONG_LIVED_LOOP.set(True)
    try:
        if scope["method"] != "POST":
            outcome = failure(405, "Use POST.")
        else:
            body = await read_body(receive, settings.POST_CALL_MAX_JSON_BYTES)
            api = APIS[scope["path"]]
            outcome = failure(413, "The request is too large.") if body is None else await complete(request, body, api)
        headers = {"X-Request-ID": request_id}
        if outcome.stream is None:
            await answer_json(send, outcome.status, outcome.document, headers)
        else:
            await stream(send, receive, outcome.stream, {**STREAM_HEADERS, **headers})
        observe(scope["path"], scope["method"], scope["path"], outcome.status, started, settings.REQUEST_METRICS)
    finally:
        LONG_LIVED_LOOP.reset(loop_token)
        REQUEST_ID.reset(token)


async def read_body(receive, limit: int) -> bytes | None:
    """The whole body, or None when it is larger than `limit` bytes."""
    parts, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
        if not message.get("more_body"):
            return b"".join(parts)


async def answer_json(send, status: int, document: dict, headers: dict[str, str]) -> None:
    body = json.dumps(document).encode()
    headers = {**headers, "Content-Type": "application/json", "Content-Length": str(len(body))}
    await send({"type": "http.response.start", "status": status, "headers": encoded(headers)})
    await send({"type": "http.response.body", "body": body})


async def stream(send, receive, events, headers: dict[str, str]) -> None:
    """Relay `events` to the client until they end or the client disconnects (then they are cancelled)."""

    async def pump() -> None:
        await send({"type": "http.response.start", "status": 200, "headers": encoded(headers)})
        async for event in events:
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    pumping, watching = asyncio.create_task(pump()), asyncio.create_task(disconnected())
    try:
        await asyncio.wait({pumping, watching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (pumping, watching):
            task.cancel()
        await asyncio.gather(pumping, watching, return_exceptions=True)
        await events.aclose()  # closes the upstream request if the pump stopped half-way


def encoded(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
