"""ElevenLabs' JSON, read and written in one place: every field name of their payloads appears in this module.

Parsing is lenient, as their contract wants: unknown fields are ignored, missing optional ones tolerated, a
`null` anywhere never raises. Every reader returns plain Python values (str, int, datetime, dataclasses), so no
other module walks ElevenLabs' dictionaries.

- Conversation initiation webhook (inbound Twilio/SIP calls): request `{"caller_id", "agent_id",
  "called_number", "call_sid"}` (SIP may send `call_id`, or neither); answer `{"type":
  "conversation_initiation_client_data", "dynamic_variables": {...}, "conversation_config_override": {...},
  "user_id": ...}`.
- Server tool: a JSON body with the properties the operator defined, sometimes nested in `"parameters"`.
- Post-call webhooks: `{"type", "event_timestamp", "data"}`; `data` of a transcription has `conversation_id`,
  `agent_id`, `user_id`, `transcript[]` (`role`, `message`, `time_in_call_secs`), `metadata` (`start_time_unix_secs`,
  `phone_call.external_number`), `analysis` (`transcript_summary`, `data_collection_results{id: {value}}`) and
  `conversation_initiation_client_data.dynamic_variables` (`system__caller_id`, our `user_id`).
"""

import enum
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

CALLER_ROLE = "user"
INITIATION_RESPONSE_TYPE = "conversation_initiation_client_data"
MAX_ID_CHARS = 128


class EventType(enum.StrEnum):
    TRANSCRIPTION = "post_call_transcription"
    AUDIO = "post_call_audio"
    INITIATION_FAILURE = "call_initiation_failure"


# Fields of a post-call payload that name its caller, as JSON paths from the envelope (forget_user finds a
# caller's stored events by them, before the events are processed).
USER_ID_PATHS = (("data", "user_id"), ("data", "conversation_initiation_client_data", "dynamic_variables", "user_id"))
PHONE_PATHS = (
    ("data", "metadata", "phone_call", "external_number"),
    ("data", "conversation_initiation_client_data", "dynamic_variables", "system__caller_id"),
)
# Audio bodies are too big to parse; these find the envelope fields in the raw bytes (base64 has no quotes).
AUDIO_FIELD = "full_audio"
SCANNED_FIELDS = {
    "type": re.compile(rb'"type"\s*:\s*"([A-Za-z0-9_.-]{1,64})"'),
    "conversation_id": re.compile(rb'"conversation_id"\s*:\s*"([A-Za-z0-9_.:-]{1,128})"'),
    "agent_id": re.compile(rb'"agent_id"\s*:\s*"([A-Za-z0-9_.:-]{1,128})"'),
}
SCAN_CHUNK = 64 * 1024


@dataclass(frozen=True)
class CallerHint:
    """Who a payload says is calling: our user id when it carries one, else the caller's phone number."""

    user_id: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class Envelope:
    event_type: str
    conversation_id: str
    agent_id: str
    event_timestamp: datetime | None
    payload: dict | None  # the envelope as stored: never audio; None when only scanned


@dataclass(frozen=True)
class CallerTurn:
    index: int  # position in the transcript
    text: str
    seconds_into_call: float | None


@dataclass(frozen=True)
class TranscriptLine:
    index: int
    speaker: str  # "caller" or "agent"
    text: str


# --- Post-call webhooks --------------------------------------------------------------------------------------


def parse_envelope(envelope: object) -> Envelope | None:
    """The envelope of a parsed post-call body (audio removed), or None when it is not a JSON object."""
    if not isinstance(envelope, dict):
        return None
    event_type = _text(envelope.get("type")) or "unknown"
    data = _dict(envelope.get("data"))
    if event_type == EventType.AUDIO:
        envelope = {**envelope, "data": {key: value for key, value in data.items() if key != AUDIO_FIELD}}
    return Envelope(
        event_type=event_type[:64],
        conversation_id=_text(data.get("conversation_id"))[:MAX_ID_CHARS],
        agent_id=_text(data.get("agent_id"))[:MAX_ID_CHARS],
        event_timestamp=_unix_time(envelope.get("event_timestamp")),
        payload=envelope,
    )


def scan_envelope(file: BinaryIO) -> Envelope:
    """The envelope fields of a body too big to parse (audio), found in the raw bytes; nothing is kept."""
    found: dict[str, str] = {}
    tail = b""
    while chunk := file.read(SCAN_CHUNK):
        window = tail + chunk
        for name, pattern in SCANNED_FIELDS.items():
            if name not in found and (match := pattern.search(window)):
                found[name] = match.group(1).decode()
        tail = window[-256:]
    return Envelope(
        event_type=found.get("type", "unknown"),
        conversation_id=found.get("conversation_id", ""),
        agent_id=found.get("agent_id", ""),
        event_timestamp=None,
        payload=None,
    )


def event_data(payload: dict | None) -> dict:
    """The `data` object of a stored envelope ({} when absent)."""
    return _dict((payload or {}).get("data"))


def payload_user_id(payload: dict | None) -> str:
    """Our user id, when a stored post-call envelope carries one at `data.user_id` ("" otherwise)."""
    return _text(event_data(payload).get("user_id"))[:MAX_ID_CHARS]


def post_call_caller(data: dict) -> CallerHint:
    """Who a transcription is about: the user id the call carries (top level or our dynamic variable), and the
    caller's number (the phone call's external number, or the `system__caller_id` dynamic variable)."""
    variables = _dynamic_variables(data)
    phone_call = _dict(_dict(data.get("metadata")).get("phone_call"))
    return CallerHint(
        user_id=_text(data.get("user_id")) or _text(variables.get("user_id")) or None,
        phone=_phone(phone_call.get("external_number")) or _phone(variables.get("system__caller_id")),
    )


def caller_turns(data: dict) -> list[CallerTurn]:
    """The caller's turns with something said, in transcript order."""
    turns = []
    for index, turn in enumerate(_list(data.get("transcript"))):
        turn = _dict(turn)
        message = turn.get("message")
        if turn.get("role") != CALLER_ROLE or not isinstance(message, str) or not message.strip():
            continue
        seconds = turn.get("time_in_call_secs")
        seconds = float(seconds) if isinstance(seconds, int | float) and not isinstance(seconds, bool) else None
        turns.append(CallerTurn(index=index, text=message, seconds_into_call=seconds))
    return turns


def transcript_lines(data: dict) -> list[TranscriptLine]:
    """Every turn with something said, caller's and agent's, in order (what an extraction LLM reads)."""
    lines = []
    for index, turn in enumerate(_list(data.get("transcript"))):
        turn = _dict(turn)
        message = turn.get("message")
        if isinstance(message, str) and message.strip():
            speaker = "caller" if turn.get("role") == CALLER_ROLE else "agent"
            lines.append(TranscriptLine(index=index, speaker=speaker, text=message.strip()))
    return lines


def conversation_id(data: dict) -> str:
    return _text(data.get("conversation_id"))[:MAX_ID_CHARS]


def call_started_at(data: dict) -> datetime | None:
    return _unix_time(_dict(data.get("metadata")).get("start_time_unix_secs"))


def call_summary(data: dict) -> str:
    return _text(_dict(data.get("analysis")).get("transcript_summary")).strip()


def data_collection(data: dict) -> list[tuple[str, object]]:
    """(field id, value) of every data-collection result with a value."""
    results = _dict(_dict(data.get("analysis")).get("data_collection_results"))
    collected = []
    for field_id, result in results.items():
        value = _dict(result).get("value")
        if value not in (None, "", [], {}):
            collected.append((str(field_id), value))
    return collected


# --- Conversation initiation ---------------------------------------------------------------------------------


def initiation_caller(body: dict) -> CallerHint:
    return CallerHint(user_id=_text(body.get("user_id")).strip() or None, phone=_phone(body.get("caller_id")))


def initiation_response(
    dynamic_variables: dict[str, str | int | float | bool], user_id: str = "", first_message: str = ""
) -> dict:
    """The answer ElevenLabs expects; `type` is mandatory (without it the call fails silently)."""
    answer: dict = {"type": INITIATION_RESPONSE_TYPE, "dynamic_variables": dynamic_variables}
    if user_id:
        answer["user_id"] = user_id
    if first_message:
        answer["conversation_config_override"] = {"agent": {"first_message": first_message}}
    return answer


# --- Server tool ---------------------------------------------------------------------------------------------


def unwrap_tool_body(body: dict) -> dict:
    """The tool's properties, from a flat body or one nested in {"parameters": {...}}."""
    parameters = body.get("parameters")
    if isinstance(parameters, dict):
        return {**{key: value for key, value in body.items() if key != "parameters"}, **parameters}
    return body


def tool_caller(body: dict) -> tuple[object, object]:
    """(the user id field as sent, the first caller-number field as sent); None when absent or empty.

    Raw values: the tool's serializer turns a wrong type into a 400 the agent can read.
    """
    user_id = body.get("user_id")
    phone = next((body[name] for name in ("caller_id", "system__caller_id") if body.get(name) not in (None, "")), None)
    return (None if user_id in (None, "") else user_id), phone


def agent_id_problem(body: dict) -> str:
    """Why a tool's agent property is unusable (not text, too long), in one sentence; empty when it is fine or
    absent."""
    for name in ("agent_id", "system__agent_id"):
        value = body.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_ID_CHARS):
            return f"{name}: must be a string of at most {MAX_ID_CHARS} characters."
    return ""


def request_agent_id(body: dict) -> str:
    """The ElevenLabs agent a request comes from: the initiation's `agent_id`, or a tool's `agent_id` /
    `system__agent_id` property (the dynamic variable); empty when it does not say. What is not a plausible agent
    id (not text, too long) is treated as absent; the space's secret still decides."""
    return _plausible_id(body.get("agent_id"), body.get("system__agent_id"))


def tool_conversation_id(body: dict) -> str:
    """The conversation a tool call happens in, when the tool sends it (dynamic variable
    `system__conversation_id`); empty otherwise."""
    value = next((body[name] for name in ("conversation_id", "system__conversation_id") if body.get(name)), "")
    return value[:MAX_ID_CHARS] if isinstance(value, str) else ""


# --- Custom LLM (an OpenAI chat completion request, with ElevenLabs' additions) --------------------------------

# ElevenLabs adds these to the OpenAI request; they are ours to read, not the upstream LLM's.
ELEVENLABS_CHAT_FIELDS = ("user_id", "elevenlabs_extra_body")
MEMORY_USER_LINE = re.compile(r"memory_user_id\s*[:=]\s*([A-Za-z0-9_.:+-]{1,128})")
MEMORY_AGENT_LINE = re.compile(r"memory_agent_id\s*[:=]\s*([A-Za-z0-9_.:+-]{1,128})")


def _openai_request_problem(body: object) -> str:
    """What both OpenAI request shapes (chat completions, Responses) need first: an object naming a model."""
    if not isinstance(body, dict):
        return "The body must be a JSON object."
    if not isinstance(body.get("model"), str) or not body["model"].strip():
        return "model: a model name (string) is required."
    return ""


def chat_request_problem(body: object) -> str:
    """Why an OpenAI chat completion request is unusable, in one sentence; empty when it is fine."""
    if problem := _openai_request_problem(body):
        return problem
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: a non-empty list of messages is required."
    for position, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            return f"messages[{position}]: each message is an object with a role."
    if "stream" in body and not isinstance(body["stream"], bool):
        return "stream: must be true or false."
    return ""


def forwardable_chat_request(body: dict) -> dict:
    """The request as the upstream LLM should see it: without ElevenLabs' own fields."""
    return {key: value for key, value in body.items() if key not in ELEVENLABS_CHAT_FIELDS}


def llm_caller(body: dict) -> str:
    """Our user id for a Custom LLM request: the request's `user_id` (what the initiation webhook answered),
    `elevenlabs_extra_body.user_id`, or a `memory_user_id: {{user_id}}` line in a system message; empty if none."""
    extra = _dict(body.get("elevenlabs_extra_body"))
    return _plausible_id(body.get("user_id"), extra.get("user_id")) or _system_line(body, MEMORY_USER_LINE)


def llm_agent(body: dict) -> str:
    """The agent of a Custom LLM request: `elevenlabs_extra_body.agent_id`, or a `memory_agent_id:
    {{system__agent_id}}` line in a system message; empty if none."""
    extra = _dict(body.get("elevenlabs_extra_body"))
    return _plausible_id(extra.get("agent_id")) or _system_line(body, MEMORY_AGENT_LINE)


def _plausible_id(*values: object) -> str:
    """The first value that can be an id (text, not blank, at most MAX_ID_CHARS), stripped; empty if none."""
    for value in values:
        if isinstance(value, str) and value.strip() and len(value) <= MAX_ID_CHARS:
            return value.strip()
    return ""


def _system_line(body: dict, line: re.Pattern) -> str:
    """What follows `line`'s label in the first system message holding it; empty if none."""
    for message in _list(body.get("messages")):
        if isinstance(message, dict) and message.get("role") == "system":
            found = line.search(_message_text(message))
            if found:
                return found.group(1)
    return ""


def responses_request_problem(body: object) -> str:
    """Why an OpenAI Responses API request (`/v1/responses`) is unusable, in one sentence; empty when fine."""
    if problem := _openai_request_problem(body):
        return problem
    given = body.get("input")
    if not (isinstance(given, str) and given.strip()) and not (isinstance(given, list) and given):
        return "input: a non-empty string or list of input items is required."
    for position, item in enumerate(given if isinstance(given, list) else []):
        if not isinstance(item, dict):
            return f"input[{position}]: each input item is an object."
    if body.get("instructions") is not None and not isinstance(body["instructions"], str):
        return "instructions: must be a string."
    if "stream" in body and not isinstance(body["stream"], bool):
        return "stream: must be true or false."
    return ""


def responses_as_chat(body: dict) -> dict:
    """A Responses API request seen as a chat request, for the readers above (caller, agent, latest question):
    `instructions` as the system message, `input` as the messages (a string is one user message)."""
    given = body.get("input")
    items = [{"role": "user", "content": given}] if isinstance(given, str) else _list(given)
    messages = [item for item in items if isinstance(item, dict) and isinstance(item.get("role"), str)]
    if isinstance(body.get("instructions"), str):
        messages = [{"role": "system", "content": body["instructions"]}, *messages]
    return {**{key: body[key] for key in ELEVENLABS_CHAT_FIELDS if key in body}, "messages": messages}


def with_instructions_note(body: dict, note: str) -> dict:
    """A Responses API request with `note` appended to its instructions."""
    instructions = body.get("instructions") if isinstance(body.get("instructions"), str) else ""
    return {**body, "instructions": f"{instructions}\n\n{note}" if instructions else note}


def latest_user_message(body: dict) -> str:
    """The text of the last user message (what the caller just said); empty when there is none."""
    for message in reversed(body.get("messages", [])):
        if isinstance(message, dict) and message.get("role") == "user":
            return _message_text(message).strip()
    return ""


def with_system_note(messages: list, note: str) -> list:
    """The messages with `note` appended to the first system message (a new one first when there is none)."""
    for position, message in enumerate(messages):
        if isinstance(message, dict) and message.get("role") == "system" and isinstance(message.get("content"), str):
            return [
                *messages[:position],
                {**message, "content": f"{message['content']}\n\n{note}"},
                *messages[position + 1 :],
            ]
    return [{"role": "system", "content": note}, *messages]


def _message_text(message: dict) -> str:
    """A message's text: a string content, or the text parts of a list content."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part.get("text", "") for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


# --- Lenient readers -----------------------------------------------------------------------------------------


def _dynamic_variables(data: dict) -> dict:
    return _dict(_dict(data.get("conversation_initiation_client_data")).get("dynamic_variables"))


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list:
    return value if isinstance(value, list) else []


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _phone(value: object) -> str | None:
    """A caller number as sent (digits may come as a JSON number); None when absent or empty."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _unix_time(value: object) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 32_503_680_000:
        return datetime.fromtimestamp(value, UTC)
    return None
