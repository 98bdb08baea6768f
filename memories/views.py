"""The ElevenLabs server tool: POST /tools/memory-query. Parse, call query_memories, answer compactly.

A non-2xx answer becomes a tool error the agent may read aloud, so every error body is one short sentence.
"""

import json
import logging

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from embeddings.errors import EmbeddingInputError, EmbeddingProviderError
from memories.auth import secret_matches
from memories.identity import user_id_from_tool_body
from memories.query import query_memories
from memories.responses import server_timing, tool_answer
from memories.serializers import MemoryQuerySerializer, first_error

logger = logging.getLogger(__name__)


def error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def parse_tool_body(request: HttpRequest) -> dict:
    """The tool's JSON body, unwrapped from {"parameters": {...}} when ElevenLabs nests it."""
    try:
        body = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ValueError("the body must be JSON") from None
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    if isinstance(body.get("parameters"), dict):
        body = {**{k: v for k, v in body.items() if k != "parameters"}, **body["parameters"]}
    return body


def validated_query(body: dict) -> tuple[dict | None, str]:
    data = {**body, "user_id": user_id_from_tool_body(body)}
    if data["user_id"] is None:
        data.pop("user_id")
    serializer = MemoryQuerySerializer(data=data)
    if not serializer.is_valid():
        return None, first_error(serializer.errors)
    return serializer.validated_data, ""


@csrf_exempt
@require_POST
def memory_query_tool(request: HttpRequest) -> JsonResponse:
    secrets = settings.ELEVENLABS_TOOL_SECRETS
    if not secrets:
        return error(503, "The memory tool is not configured yet.")
    if not secret_matches(request, settings.ELEVENLABS_TOOL_SECRET_HEADER, secrets):
        return error(401, "Missing or wrong secret.")
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
