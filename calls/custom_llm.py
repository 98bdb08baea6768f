"""ElevenLabs' Custom LLM: an OpenAI-compatible `POST /v1/chat/completions` that adds the caller's memories.

ElevenLabs calls the agent's LLM for every turn. Pointed here, each turn:
1. is authenticated by the agent's Custom LLM API key (`Authorization: Bearer`: ELEVENLABS_LLM_SECRETS for the
   default space, or a space's own secret), and admitted to that space when it names its agent
   (`elevenlabs_extra_body.agent_id` or a `memory_agent_id: {{system__agent_id}}` line; calls.spaces);
2. names its caller (calls.payloads.llm_caller: the request's `user_id`, `elevenlabs_extra_body.user_id`, or a
   `memory_user_id: …` line in the system prompt, where `{{user_id}}` is a dynamic variable);
3. gets the memories relevant to the latest user message (memories.query, in a worker thread, within
   CUSTOM_LLM_MEMORY_BUDGET_SECONDS), added to the system message;
4. is forwarded to the real LLM (CUSTOM_LLM_BASE_URL / CUSTOM_LLM_API_KEY, any OpenAI-compatible server) through
   the `openai` SDK, and its stream relayed as Server-Sent Events exactly as it comes (`data: {json}` chunks,
   tool calls included, then `data: [DONE]`).

Memories never fail a turn: no caller, a slow or failing retrieval → the request goes on without them. Errors are
OpenAI's shape (`{"error": {"message", "type", ...}}`). The view is async and served by an ASGI server
(gunicorn with uvicorn workers): an open stream costs a coroutine, not a thread. A client that hangs up cancels
the stream, and the upstream request with it.
"""

import asyncio
import json
import logging
import weakref
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass

import openai
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from calls import payloads
from calls.spaces import Admission, admit, admit_by_environment
from core.access import SecretPolicy
from core.json_input import JSONInputError, load_json
from memories.owners import Owner, OwnerError
from memories.query import query_memories

logger = logging.getLogger(__name__)

LLM_SECRET = SecretPolicy(
    secrets_setting="ELEVENLABS_LLM_SECRETS",
    not_configured="The Custom LLM endpoint is not configured yet (ELEVENLABS_LLM_SECRETS).",
)
MEMORY_HEADER = "What you remember about this caller from earlier calls (use it when relevant; never recite it):"


@dataclass
class Outcome:
    """What to answer: a JSON document, or (status 200) a stream of Server-Sent Events."""

    status: int
    document: dict | None = None
    stream: AsyncIterator[bytes] | None = None


def failure(status: int, message: str, kind: str = "invalid_request_error") -> Outcome:
    """An error in OpenAI's shape, which ElevenLabs and OpenAI clients read."""
    return Outcome(status, {"error": {"message": message, "type": kind, "param": None, "code": None}})


ADMISSION_KINDS = {401: "authentication_error", 403: "permission_error"}


async def admission(request: HttpRequest, body: object) -> Admission:
    """The turn's space (calls.spaces), looked up in a worker thread only when the database is needed."""
    agent_id = payloads.llm_agent(body) if isinstance(body, dict) else ""
    quick = admit_by_environment(request, LLM_SECRET, agent_id)
    if quick is not None:
        return quick
    return await in_worker_thread(admit)(request, LLM_SECRET, agent_id)


# True while a turn is served by the ASGI server's event loop (calls.asgi), whose worker threads live as long as
# the process, so their database connections are kept for the next turns (DATABASE_CONN_MAX_AGE). Through
# Django's handler under WSGI or runserver each request gets a fresh event loop whose threads end with it: a
# connection kept there would stay open until garbage collection, so it is closed instead.
LONG_LIVED_LOOP: ContextVar[bool] = ContextVar("custom_llm_long_lived_loop", default=False)


def in_worker_thread(function):
    """`function` as a coroutine run in a worker thread, with that thread's database connection checked before
    and after, like a request's (an async view must not touch the ORM itself)."""

    def run(*args):
        close_old_connections()
        try:
            return function(*args)
        finally:
            if LONG_LIVED_LOOP.get():
                close_old_connections()
            else:
                connections.close_all()

    return sync_to_async(run, thread_sensitive=False)


CHAT, RESPONSES = "chat", "responses"  # the two OpenAI APIs ElevenLabs' Custom LLM may speak


async def complete(request: HttpRequest, raw_body: bytes, api: str = CHAT) -> Outcome:
    """One turn: authenticate, add the caller's memories, forward, and answer (a stream, usually). `api` is CHAT
    (`/v1/chat/completions`) or RESPONSES (`/v1/responses`: the memories go into `instructions`)."""
    try:
        body, problem = load_json(raw_body or b"null"), ""
    except JSONInputError as error:
        body, problem = None, f"The body must be JSON: {error}."
    chat_view = payloads.responses_as_chat(body) if api == RESPONSES and isinstance(body, dict) else body
    try:
        admitted = await admission(request, chat_view)
    except DatabaseError:  # a space's secret could not be looked up: the agent's LLM says so, nothing breaks
        logger.warning("Custom LLM turn refused: its space could not be looked up (database unavailable)")
        return failure(503, "The memory platform cannot check this key right now; retry shortly.", "server_error")
    if admitted.refused:
        return failure(admitted.status, admitted.message, ADMISSION_KINDS.get(admitted.status, "server_error"))
    check = payloads.responses_request_problem if api == RESPONSES else payloads.chat_request_problem
    problem = problem or check(body)
    if problem:
        return failure(400, problem)

    forwarded = payloads.forwardable_chat_request(body)
    user_id, question = payloads.llm_caller(chat_view), payloads.latest_user_message(chat_view)
    owner = caller_owner(admitted.space_id, user_id)
    if owner is not None and question:
        memories = await recall(owner, question)
        if memories and api == RESPONSES:
            forwarded = payloads.with_instructions_note(forwarded, memory_note(memories))
        elif memories:
            forwarded["messages"] = payloads.with_system_note(forwarded["messages"], memory_note(memories))
    if settings.CUSTOM_LLM_MODEL:
        forwarded["model"] = settings.CUSTOM_LLM_MODEL

    client = upstream()
    model, stream = forwarded.pop("model"), bool(forwarded.pop("stream", False))
    if api == RESPONSES:
        resource, arguments = client.responses, {"input": forwarded.pop("input")}
    else:
        resource, arguments = client.chat.completions, {"messages": forwarded.pop("messages")}
    try:
        if not stream:
            answer = await resource.create(model=model, **arguments, extra_body=forwarded)
            return Outcome(200, answer.model_dump(exclude_unset=True))
        opened = resource.with_streaming_response.create(model=model, **arguments, stream=True, extra_body=forwarded)
        upstream_response = await opened.__aenter__()
    except openai.APIStatusError as error:
        message = f"The language model answered {error.status_code}: {upstream_message(error)}"
        return failure(error.status_code, message, "upstream_error")
    except openai.APITimeoutError:
        return failure(504, "The language model did not answer in time.", "upstream_error")
    except openai.APIConnectionError:
        return failure(502, "The language model could not be reached.", "upstream_error")
    return Outcome(200, stream=relay(opened, upstream_response, ends_with_done=api == CHAT))


STREAM_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@csrf_exempt
async def chat_completions(request: HttpRequest) -> HttpResponse:
    """The endpoint through Django's handler (any server: runserver, WSGI, ASGI). Production's ASGI server takes
    the fast path instead (calls.asgi), which skips Django's middleware: under ASGI each of Django's middlewares
    hops to one shared thread, which made 32 concurrent turns queue behind each other."""
    return await answer(request, CHAT)


@csrf_exempt
async def responses(request: HttpRequest) -> HttpResponse:
    """`/v1/responses` (OpenAI's Responses API, which ElevenLabs' Custom LLM also speaks), through Django's
    handler; the ASGI fast path serves it in production, as it does chat completions."""
    return await answer(request, RESPONSES)


async def answer(request: HttpRequest, api: str) -> HttpResponse:
    if request.method != "POST":
        return JsonResponse(failure(405, "Use POST.").document, status=405)
    outcome = await complete(request, request.body, api)
    if outcome.stream is None:
        return JsonResponse(outcome.document, status=outcome.status)
    response = StreamingHttpResponse(outcome.stream)
    for name, value in STREAM_HEADERS.items():
        response[name] = value
    return response


async def relay(opened, upstream_response, ends_with_done: bool = True) -> AsyncIterator[bytes]:
    """The upstream's Server-Sent Events line by line, as they come (nothing parsed and re-encoded: the chunks,
    tool calls included, reach ElevenLabs exactly as the LLM wrote them). A chat stream always ends with
    `data: [DONE]` (the Responses API has no such line: its last event is `response.completed`). A stream that
    breaks off ends with an error event; a client's hang-up (cancellation) closes the upstream request."""
    done = False
    try:
        async for line in upstream_response.iter_lines():
            done = done or line.strip() == "data: [DONE]"
            yield f"{line}\n".encode()
        if ends_with_done and not done:
            yield b"data: [DONE]\n\n"
    except (TimeoutError, openai.APIError, OSError) as error:
        logger.warning("language model stream broke", extra={"error": f"{type(error).__name__}: {error}"[:300]})
        failure = {"error": {"message": "The language model's stream broke off.", "type": "upstream_error"}}
        yield f"data: {json.dumps(failure)}\n\n".encode()
    finally:
        await opened.__aexit__(None, None, None)


def caller_owner(space_id: int, user_id: str) -> Owner | None:
    """The caller in the turn's space; None when the request names no usable user id (then: no memories)."""
    try:
        return Owner(space_id, user_id)
    except OwnerError:
        return None


async def recall(owner: Owner, question: str) -> list[str]:
    """The caller's memories for `question`, or [] when retrieval fails or takes longer than its budget."""
    budget = settings.CUSTOM_LLM_MEMORY_BUDGET_SECONDS
    try:
        return await asyncio.wait_for(in_worker_thread(memories_for)(owner, question), budget)
    except TimeoutError:
        logger.warning("memories skipped: retrieval over its budget", extra={"budget_seconds": budget})
    except Exception as error:  # never fail a turn for its memories
        logger.warning("memories skipped: retrieval failed", extra={"error": f"{type(error).__name__}: {error}"[:300]})
    return []


def memories_for(owner: Owner, question: str) -> list[str]:
    """The texts of the caller's memories for the turn (run in a worker thread)."""
    result = query_memories(
        owner, question[: settings.MEMORY_QUERY_MAX_CHARS], limit=settings.CUSTOM_LLM_MEMORIES, deadline=None
    )
    return [item.memory.text for item in result.memories]


def memory_note(memories: list[str]) -> str:
    return "\n".join([MEMORY_HEADER, *(f"- {text}" for text in memories)])


def upstream_message(error: openai.APIStatusError) -> str:
    body = error.body if isinstance(error.body, dict) else {}  # the SDK hands over the inner "error" object
    return str(body.get("message") or error.message)[:300]


_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, openai.AsyncOpenAI]" = weakref.WeakKeyDictionary()


def upstream() -> openai.AsyncOpenAI:
    """One client per event loop (its connection pool serves every stream of the loop; under uvicorn that is one
    per worker process). Settings are read when a loop first asks."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = _clients[loop] = openai.AsyncOpenAI(
            base_url=settings.CUSTOM_LLM_BASE_URL or None,
            api_key=settings.CUSTOM_LLM_API_KEY or "not-needed",
            timeout=settings.CUSTOM_LLM_TIMEOUT,
            max_retries=0,  # a voice turn cannot wait for retries; ElevenLabs has its own fallback
        )
    return client
