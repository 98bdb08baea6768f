"""The ElevenLabs endpoints in the OpenAPI schema, so an operator can read (and paste) what each one takes.

They are plain Django views (the post-call webhook must see the raw bytes it verifies, the tool and the initiation
are on the hot path), which drf-spectacular does not inspect: their documentation is written here, and the
schema test (tests/test_openapi_fuzz.py) calls them with generated requests and checks every answer against it.
"""

from django.conf import settings

from memories.sectors import Sector

TOOL_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string", "description": "One short sentence the agent may read aloud."}},
    "required": ["error"],
}
MEMORY_SECRET = {
    "type": "apiKey",
    "in": "header",
    "name": "X-Memory-Secret",
    "description": "The static secret configured in ElevenLabs (ELEVENLABS_TOOL_SECRETS, "
    "ELEVENLABS_INITIATION_SECRETS; the header name is a setting). `Authorization: Bearer <secret>` works too.",
}
SIGNATURE = {
    "type": "apiKey",
    "in": "header",
    "name": "ElevenLabs-Signature",
    "description": "`t=<unix>,v0=<hex>`: HMAC-SHA256 of `<t>.<raw body>` with a secret of ELEVENLABS_WEBHOOK_SECRETS.",
}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict:
    return {"description": description, **_json({"$ref": "#/components/schemas/CallError"})}


def _any_case(word: str) -> str:
    return "".join(f"[{char}{char.upper()}]" for char in word)


SECTOR_NAME = "(" + "|".join(_any_case(sector) for sector in Sector.values) + ")"
SECTOR_LIST = rf"^\s*({SECTOR_NAME}\s*(,\s*{SECTOR_NAME}\s*)*)?$"  # "episodic, Semantic" (what an LLM sends)

TOOL_REQUEST = {
    "type": "object",
    "properties": {
        "query": {
            "type": "string",
            "pattern": r"\S",
            "maxLength": settings.MEMORY_QUERY_MAX_CHARS,
            "description": "What to look up.",
        },
        "user_id": {
            "type": "string",
            "maxLength": 128,
            "description": "The caller: the `user_id` dynamic variable the initiation webhook returned (when it is "
            "empty, system__caller_id stands in).",
        },
        "system__caller_id": {
            "type": "string",
            "nullable": True,
            "description": "Instead of user_id: the caller's number, mapped to the same user (null on web calls).",
        },
        "system__agent_id": {
            "type": "string",
            "nullable": True,
            "description": "The agent (dynamic variable `system__agent_id`): it must belong to the secret's memory "
            "space (403 otherwise).",
        },
        "limit": {"type": "integer", "minimum": 1, "maximum": 50, "default": 5},
        "sectors": {
            "description": "Only these sectors: a list, or one comma-separated string.",
            "oneOf": [
                {"type": "array", "items": {"type": "string", "enum": list(Sector.values)}},
                {"type": "string", "pattern": SECTOR_LIST},
            ],
        },
    },
    "required": ["query"],
    "anyOf": [
        {"required": ["user_id"], "properties": {"user_id": {"pattern": r"\S"}}},
        {"required": ["system__caller_id"], "properties": {"system__caller_id": {"type": "string", "pattern": r"\S"}}},
    ],
}
TOOL_ANSWER = {
    "type": "object",
    "properties": {
        "memories": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "text": {"type": "string"},
                    "sector": {"type": "string"},
                    "score": {"type": "number"},
                    "when": {"type": "string", "description": "'2026-11-20, 4 days ago'"},
                },
                "required": ["id", "text", "sector", "score", "when"],
            },
        },
        "summary": {"type": "string"},
    },
    "required": ["memories", "summary"],
}
REMEMBER_REQUEST = {
    "type": "object",
    "properties": {
        "text": {
            "type": "string",
            "pattern": r"\S",
            "maxLength": settings.MEMORY_MAX_TEXT_CHARS,
            "description": "The fact, in the caller's words where possible.",
        },
        "user_id": TOOL_REQUEST["properties"]["user_id"],
        "system__caller_id": TOOL_REQUEST["properties"]["system__caller_id"],
        "system__agent_id": TOOL_REQUEST["properties"]["system__agent_id"],
        "system__conversation_id": {
            "type": "string",
            "nullable": True,
            "description": "The call, kept as the memory's provenance.",
        },
        "sector": {
            "type": "string",
            "nullable": True,
            "enum": [*Sector.values, None],
            "description": "Guessed from the text if absent, empty or null.",
        },
    },
    "required": ["text"],
    "anyOf": TOOL_REQUEST["anyOf"],
}
REMEMBER_ANSWER = {
    "type": "object",
    "properties": {
        "remembered": {"type": "boolean"},
        "id": {"type": "integer"},
        "already_known": {"type": "boolean", "description": "It repeated a memory, which was reinforced instead."},
        "text": {"type": "string"},
    },
    "required": ["remembered", "id", "already_known", "text"],
}
INITIATION_REQUEST = {
    "description": "What ElevenLabs sends for an inbound Twilio or SIP call. Every field is optional, and any JSON is "
    "answered: a body that cannot be used gets the defaults, so the call goes on.",
    "properties": {
        "caller_id": {"description": "The caller's phone number (any format ElevenLabs sends)."},
        "agent_id": {"description": "The ElevenLabs agent answering."},
        "called_number": {"description": "The number that was called."},
        "call_sid": {"description": "Twilio's call id."},
        "call_id": {"description": "SIP's call id."},
        "user_id": {"description": "Our user id, when the caller is already known by one (web calls)."},
    },
}
INITIATION_ANSWER = {
    "type": "object",
    "properties": {
        "type": {"type": "string", "enum": ["conversation_initiation_client_data"]},
        "dynamic_variables": {
            "type": "object",
            "properties": {
                "user_id": {"type": "string"},
                "memory_context": {"type": "string"},
                "caller_known": {"type": "boolean"},
                "memory_count": {"type": "integer"},
            },
            "required": ["user_id", "memory_context", "caller_known", "memory_count"],
        },
        "user_id": {"type": "string"},
        "conversation_config_override": {"type": "object"},
    },
    "required": ["type", "dynamic_variables"],
}
POST_CALL_REQUEST = {
    "type": "object",
    "description": "ElevenLabs' post-call webhook envelope (post_call_transcription, post_call_audio, "
    "call_initiation_failure).",
    "properties": {"type": {"type": "string"}, "event_timestamp": {"type": "integer"}, "data": {"type": "object"}},
}
POST_CALL_ANSWER = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["accepted", "duplicate", "quarantined"]},
        "event_id": {"type": "integer"},
    },
    "required": ["status", "event_id"],
}

PATHS = {
    "/tools/memory-query": {
        "post": {
            "operationId": "elevenlabs_memory_query_tool",
            "tags": ["elevenlabs"],
            "summary": "The ElevenLabs server tool: the caller's memories for a question (method POST).",
            "security": [{"memorySecret": []}],
            "requestBody": {"required": True, **_json(TOOL_REQUEST)},
            "responses": {
                "200": {"description": "The best memories, compact for the agent's LLM.", **_json(TOOL_ANSWER)},
                "400": _error("The body is not usable; the sentence says why."),
                "401": _error("Missing or wrong secret."),
                "403": _error("The agent belongs to another memory space than the secret, or to none."),
                "503": _error("Not configured, or memory search unavailable within the time budget."),
            },
        }
    },
    "/tools/memory-remember": {
        "post": {
            "operationId": "elevenlabs_memory_remember_tool",
            "tags": ["elevenlabs"],
            "summary": "The remember tool: store a fact the caller just gave, now; the next query finds it.",
            "security": [{"memorySecret": []}],
            "requestBody": {"required": True, **_json(REMEMBER_REQUEST)},
            "responses": {
                "200": {"description": "Stored (or reinforced, when it repeats a memory).", **_json(REMEMBER_ANSWER)},
                "400": _error("The body is not usable; the sentence says why."),
                "401": _error("Missing or wrong secret."),
                "403": _error("The agent belongs to another memory space than the secret, or to none."),
                "503": _error("Not configured, or memory unavailable within the time budget."),
            },
        }
    },
    "/webhooks/elevenlabs/conversation-initiation": {
        "post": {
            "operationId": "elevenlabs_conversation_initiation",
            "tags": ["elevenlabs"],
            "summary": "ElevenLabs asks who is calling while the phone rings; always 200 once authenticated.",
            "security": [{"memorySecret": []}],
            "requestBody": {"required": False, **_json(INITIATION_REQUEST)},
            "responses": {
                "200": {
                    "description": "Every dynamic variable, with defaults if anything failed.",
                    **_json(INITIATION_ANSWER),
                },
                "401": _error("Missing or wrong secret."),
                "403": _error("The agent belongs to another memory space than the secret, or to none."),
                "503": _error("Not configured."),
            },
        }
    },
    "/webhooks/elevenlabs/post-call": {
        "post": {
            "operationId": "elevenlabs_post_call",
            "tags": ["elevenlabs"],
            "summary": "A finished call: verified, stored, answered at once, processed in the background.",
            "security": [{"elevenLabsSignature": []}],
            "requestBody": {"required": True, **_json(POST_CALL_REQUEST)},
            "responses": {
                "200": {"description": "Stored (or already stored, or quarantined raw).", **_json(POST_CALL_ANSWER)},
                "401": _error("Missing, malformed, stale or wrong signature."),
                "413": _error("Body larger than POST_CALL_MAX_BYTES."),
                "503": _error("Not configured, busy with other large bodies, or the database is unavailable."),
            },
        }
    },
}


def add_call_endpoints(result: dict, generator, request, public) -> dict:
    result.setdefault("paths", {}).update(PATHS)
    components = result.setdefault("components", {})
    components.setdefault("schemas", {})["CallError"] = TOOL_ERROR
    components.setdefault("securitySchemes", {}).update(
        {"memorySecret": MEMORY_SECRET, "elevenLabsSignature": SIGNATURE}
    )
    return result
