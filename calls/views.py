"""The ElevenLabs endpoints: the memory query tool, the conversation-initiation and post-call webhooks.

Thin views: parse, call one service function, answer. A non-2xx answer of the tool becomes a tool error the
agent may read aloud, so every error body is one short sentence.
"""

import json
import logging

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from calls import payloads
from calls.identity import tool_user_id
from calls.initiation import default_answer, initiation_answer
from calls.signatures import SignatureError
from calls.webhooks import BadPayload, BodyTooLarge, parse_event, read_verified_body, store_event
from core.access import SecretPolicy, require_secret
from embeddings.errors import EmbeddingInputError, EmbeddingProviderError
from memories.answers import server_timing, tool_answer
from memories.query import query_memories
from memories.serializers import MemoryQuerySerializer, first_error

logger = logging.getLogger(__name__)

TOOL_SECRET = SecretPolicy(
    secrets_setting="ELEVENLABS_TOOL_SECRETS",
    header_setting="ELEVENLABS_TOOL_SECRET_HEADER",
    not_configured="The memory tool is not configured yet.",
)
INITIATION_SECRET = SecretPolicy(
    secrets_setting="ELEVENLABS_INITIATION_SECRETS",
    header_setting="ELEVENLABS_INITIATION_SECRET_HEADER",
    not_configured="The conversation initiation webhook is not configured yet.",
)


def error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def parse_tool_body(request: HttpRequest) -> dict:
    """The tool's JSON properties; ValueError with a short reason when the body is not a JSON object."""
    try:
        body = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ValueError("the body must be JSON") from None
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return payloads.unwrap_tool_body(body)


def validated_query(body: dict) -> tuple[dict | None, str]:
    user_field, phone_field = payloads.tool_caller(body)
    data = {key: body[key] for key in ("query", "sectors", "limit") if key in body}
    user_id = tool_user_id(user_field, phone_field)
    if user_id is not None:
        data["user_id"] = user_id
    serializer = MemoryQuerySerializer(data=data)
    if not serializer.is_valid():
        return None, first_error(serializer.errors)
    return serializer.validated_data, ""


@csrf_exempt
@require_POST
@require_secret(TOOL_SECRET)
def memory_query_tool(request: HttpRequest) -> JsonResponse:
    try:
        body = parse_tool_body(request)
    except ValueError as problem:
        return error(400, f"Bad request: {problem}.")
    params, problem = validated_query(body)
    if params is None:
        return error(400, f"Bad request: {problem}")
    try:
        result = query_memories(params["user_id"], params["query"], params["sectors"] or None, params["limit"])
    except EmbeddingInputError as problem:
        return error(400, f"Bad request: {problem}.")
    except EmbeddingProviderError:
        logger.exception("memory query failed: embedding provider")
        return error(503, "Memory search is unavailable right now; continue without it.")
    response = JsonResponse(tool_answer(result), json_dumps_params={"separators": (",", ":"), "ensure_ascii": False})
    response["Server-Timing"] = server_timing(result.timings_ms)
    return response


@csrf_exempt
@require_POST
@require_secret(INITIATION_SECRET)
def conversation_initiation_webhook(request: HttpRequest) -> JsonResponse:
    """ElevenLabs asks who is calling (Twilio/SIP) while the phone rings.

    Authenticated by a secret header. Once authenticated, the answer is always 200 with a value for every
    dynamic variable: an internal error must not fail the call, so it is logged and answered with defaults.
    """
    try:
        body = json.loads(request.body or b"{}")
        body = body if isinstance(body, dict) else {}
    except (ValueError, UnicodeDecodeError):
        body = {}
    try:
        answer = initiation_answer(body)
    except Exception:
        logger.exception("conversation initiation failed; answering defaults")
        answer = default_answer()
    return JsonResponse(answer)


@csrf_exempt
@require_POST
def post_call_webhook(request: HttpRequest) -> JsonResponse:
    """ElevenLabs posts a finished call. Verify, store durably, answer 200 fast; processing happens later."""
    if not settings.ELEVENLABS_WEBHOOK_SECRETS:
        return error(503, "The post-call webhook is not configured yet.")
    try:
        body = read_verified_body(request_body_stream(request), request.headers.get("ElevenLabs-Signature"))
    except SignatureError as problem:
        return error(401, f"Rejected: {problem}.")
    except BodyTooLarge as problem:
        return error(413, f"Rejected: {problem}.")
    try:
        with body.file:
            parsed = parse_event(body)
            event, created = store_event(parsed, body)
    except BadPayload as problem:
        return error(400, f"Bad request: {problem}.")
    return JsonResponse({"status": "accepted" if created else "duplicate", "event_id": event.pk})


def request_body_stream(request: HttpRequest):
    """The raw body as a stream; for chunked uploads (no Content-Length) the WSGI input itself."""
    if "CONTENT_LENGTH" not in request.META and request.META.get("wsgi.input_terminated"):
        return request.META["wsgi.input"]
    return request
