"""The ElevenLabs endpoints: the memory query tool, the conversation-initiation and post-call webhooks.

Thin views: parse, call one service function, answer. A non-2xx answer of the tool becomes a tool error the
agent may read aloud, so every error body is one short sentence.
"""

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from calls import payloads
from calls.identity import remembering_user_id, tool_user_id
from calls.initiation import default_answer, initiation_answer
from calls.signatures import SignatureError
from calls.spaces import Admission, admit
from calls.webhooks import BadPayload, BodyTooLarge, parse_event, quarantine_event, read_verified_body, store_event
from core.access import SecretPolicy
from core.json_input import JSONInputError, load_json
from embeddings.errors import EmbeddingInputError, EmbeddingProviderError
from memories.answers import server_timing, tool_answer
from memories.models import Memory
from memories.owners import Owner
from memories.query import query_memories
from memories.serializers import MemoryQuerySerializer, RememberSerializer, SharedValidator
from memories.services import MemoryInputError, NewMemory, create_memory

logger = logging.getLogger(__name__)

TOOL_SECRET = SecretPolicy(
    secrets_setting="ELEVENLABS_TOOL_SECRETS",
    header_setting="ELEVENLABS_TOOL_SECRET_HEADER",
    not_configured="The memory tool is not configured yet.",
)
TOOL_UNAVAILABLE = "Memory search is unavailable right now; continue without it."
REMEMBER_UNAVAILABLE = "Memory is unavailable right now; the call's transcript will still be remembered after it."
INITIATION_SECRET = SecretPolicy(
    secrets_setting="ELEVENLABS_INITIATION_SECRETS",
    header_setting="ELEVENLABS_INITIATION_SECRET_HEADER",
    not_configured="The conversation initiation webhook is not configured yet.",
)
validate_query = SharedValidator(MemoryQuerySerializer)
validate_fact = SharedValidator(RememberSerializer)


def error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def parse_tool_body(request: HttpRequest) -> dict:
    """The tool's JSON properties; ValueError with a short reason when the body is not a JSON object."""
    try:
        body = load_json(request.body or b"null")
    except JSONInputError as problem:
        raise ValueError(str(problem).replace("the body is not JSON", "the body must be JSON")) from None
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return payloads.unwrap_tool_body(body)


def refusal(admission: Admission) -> JsonResponse:
    return error(admission.status, admission.message)


def admitted_tool_call(request: HttpRequest) -> tuple[dict | None, Admission | None, JsonResponse | None]:
    """A tool call's JSON properties and its space, or the answer that refuses it (bad body, secret, agent)."""
    try:
        body = parse_tool_body(request)
    except ValueError as problem:
        admission = admit(request, TOOL_SECRET)
        if admission.refused:
            return None, None, refusal(admission)
        return None, None, error(400, f"Bad request: {problem}.")
    problem = payloads.agent_id_problem(body)
    admission = admit(request, TOOL_SECRET, "" if problem else payloads.request_agent_id(body))
    if admission.refused:
        return None, None, refusal(admission)
    if problem:
        return None, None, error(400, f"Bad request: {problem}")
    return body, admission, None


def validated_query(space_id: int, body: dict) -> tuple[dict | None, str]:
    user_field, phone_field = payloads.tool_caller(body)
    if phone_field is not None and not isinstance(phone_field, str):
        return None, "system__caller_id: must be a string."
    data = {key: body[key] for key in ("query", "sectors", "limit") if key in body}
    user_id = tool_user_id(space_id, user_field, phone_field)
    if user_id is not None:
        data["user_id"] = user_id
    return validate_query(data)


@csrf_exempt
@require_POST
def memory_query_tool(request: HttpRequest) -> JsonResponse:
    body, admission, refused = admitted_tool_call(request)
    if refused is not None:
        return refused
    deadline = time.monotonic() + settings.TOOL_TIME_BUDGET_SECONDS
    params, problem = validated_query(admission.space_id, body)
    if params is None:
        return error(400, f"Bad request: {problem}")
    owner = Owner(admission.space_id, params["user_id"])
    try:
        result = query_memories(owner, params["query"], params["sectors"] or None, params["limit"], deadline=deadline)
    except EmbeddingInputError as problem:
        return error(400, f"Bad request: {problem}.")
    except (EmbeddingProviderError, DatabaseError) as problem:
        logger.warning("memory query failed", extra={"error": f"{type(problem).__name__}: {problem}"[:300]})
        return error(503, TOOL_UNAVAILABLE)
    response = JsonResponse(tool_answer(result), json_dumps_params={"separators": (",", ":"), "ensure_ascii": False})
    response["Server-Timing"] = server_timing(result.timings_ms)
    return response


def validated_fact(space_id: int, body: dict) -> tuple[dict | None, str]:
    user_field, phone_field = payloads.tool_caller(body)
    if phone_field is not None and not isinstance(phone_field, str):
        return None, "system__caller_id: must be a string."
    for name in ("conversation_id", "system__conversation_id"):
        if body.get(name) is not None and not isinstance(body[name], str):
            return None, f"{name}: must be a string."
    data = {key: body[key] for key in ("text", "sector") if key in body and body[key] not in (None, "")}
    user_id = remembering_user_id(space_id, user_field, phone_field)
    if user_id is not None:
        data["user_id"] = user_id
    return validate_fact(data)


@csrf_exempt
@require_POST
def memory_remember_tool(request: HttpRequest) -> JsonResponse:
    """The remember tool: the agent stores a fact the caller just gave, at once (deduplicated and linked like any
    memory), so the next memory query of the same call finds it. Within the tool's time budget."""
    body, admission, refused = admitted_tool_call(request)
    if refused is not None:
        return refused
    deadline = time.monotonic() + settings.TOOL_TIME_BUDGET_SECONDS
    params, problem = validated_fact(admission.space_id, body)
    if params is None:
        return error(400, f"Bad request: {problem}")
    new = NewMemory(
        text=params["text"],
        sector=params.get("sector"),
        kind=Memory.Kind.NOTE,
        source_conversation_id=payloads.tool_conversation_id(body),
        metadata={"source": "remember tool"},
    )
    try:
        stored = create_memory(Owner(admission.space_id, params["user_id"]), new, deadline=deadline)
    except (MemoryInputError, EmbeddingInputError) as problem:
        return error(400, f"Bad request: {problem}.")
    except (EmbeddingProviderError, DatabaseError) as problem:
        logger.warning("remember failed", extra={"error": f"{type(problem).__name__}: {problem}"[:300]})
        return error(503, REMEMBER_UNAVAILABLE)
    memory = stored.memory
    answer = {"remembered": True, "id": memory.pk, "already_known": not stored.created, "text": memory.text}
    return JsonResponse(answer, json_dumps_params={"separators": (",", ":"), "ensure_ascii": False})


@csrf_exempt
@require_POST
def conversation_initiation_webhook(request: HttpRequest) -> JsonResponse:
    """ElevenLabs asks who is calling (Twilio/SIP) while the phone rings.

    Authenticated by a secret header, whose space must be the agent's (calls.spaces). Once admitted, the answer
    is always 200 with a value for every dynamic variable: an internal error must not fail the call, so it is
    logged and answered with defaults.
    """
    try:
        body = load_json(request.body or b"{}")
    except JSONInputError:
        body = {}
    body = body if isinstance(body, dict) else {}
    try:
        admission = admit(request, INITIATION_SECRET, payloads.request_agent_id(body))
    except DatabaseError:
        logger.exception("conversation initiation could not check its space; answering defaults")
        return JsonResponse(default_answer())
    if admission.refused:
        return refusal(admission)
    try:
        answer = initiation_answer(admission.space_id, body)
    except Exception:
        logger.exception("conversation initiation failed; answering defaults")
        answer = default_answer()
    return JsonResponse(answer)


@csrf_exempt
@require_POST
def post_call_webhook(request: HttpRequest) -> JsonResponse:
    """ElevenLabs posts a finished call. Verify, store durably, answer 200 fast; processing happens later.

    A body too big is refused before it is read; bodies bigger than POST_CALL_MAX_JSON_BYTES (audio) are read
    by at most POST_CALL_MAX_CONCURRENT_LARGE_BODIES requests of a process at once. An authenticated body that
    cannot be used is quarantined (kept raw) and answered 200: retrying it would never help.
    """
    if not settings.ELEVENLABS_WEBHOOK_SECRETS and not settings.ELEVENLABS_WEBHOOK_SPACE_SECRETS:
        return error(503, "The post-call webhook is not configured yet.")
    length = declared_length(request)
    if length is not None and length > settings.POST_CALL_MAX_BYTES:
        return error(413, f"Rejected: body larger than {settings.POST_CALL_MAX_BYTES} bytes.")
    with large_body_slot(length) as admitted:
        if not admitted:
            return error(503, "Busy receiving other large bodies; retry shortly.")
        try:
            body = read_verified_body(request_body_stream(request), request.headers.get("ElevenLabs-Signature"))
        except SignatureError as problem:
            return error(401, f"Rejected: {problem}.")
        except BodyTooLarge as problem:
            return error(413, f"Rejected: {problem}.")
    with body.file:
        try:
            event, created = store_event(parse_event(body), body)
        except BadPayload as problem:
            event, created = quarantine_event(body, str(problem))
    status = "quarantined" if event.status == event.Status.QUARANTINED else "accepted" if created else "duplicate"
    return JsonResponse({"status": status, "event_id": event.pk})


def declared_length(request: HttpRequest) -> int | None:
    try:
        return int(request.META["CONTENT_LENGTH"])
    except (KeyError, ValueError):
        return None


_large_bodies = threading.BoundedSemaphore(settings.POST_CALL_MAX_CONCURRENT_LARGE_BODIES)


@contextmanager
def large_body_slot(length: int | None) -> Iterator[bool]:
    """Whether this request may read its body now: always for small bodies, within a second for large ones."""
    if length is not None and length <= settings.POST_CALL_MAX_JSON_BYTES:
        yield True
        return
    admitted = _large_bodies.acquire(timeout=1.0)
    try:
        yield admitted
    finally:
        if admitted:
            _large_bodies.release()


def request_body_stream(request: HttpRequest):
    """The raw body as a stream; for chunked uploads (no Content-Length) the WSGI input itself."""
    if "CONTENT_LENGTH" not in request.META and request.META.get("wsgi.input_terminated"):
        return request.META["wsgi.input"]
    return request
