"""Receiving post-call webhooks: stream the raw body, verify its signature, store the event durably.

The body is read in chunks straight from the WSGI input (so a chunked upload of tens of MB works and
Django's DATA_UPLOAD_MAX_MEMORY_SIZE does not apply), hashed for every accepted secret as it streams, and
spooled to a temporary file (in memory up to SPOOL_IN_MEMORY bytes). Bodies up to POST_CALL_MAX_JSON_BYTES
are parsed as JSON; bigger ones (post_call_audio: base64 MP3 of the whole call) are only scanned for the
envelope fields and never stored.
"""

import hashlib
import json
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

from django.conf import settings
from django.db import IntegrityError, transaction

from memories.models import WebhookEvent
from memories.signatures import StreamingVerifier, parse_signature_header

CHUNK = 64 * 1024
SPOOL_IN_MEMORY = 1024 * 1024
TRANSCRIPTION = "post_call_transcription"
AUDIO = "post_call_audio"
INITIATION_FAILURE = "call_initiation_failure"
# Base64 never contains a quote, so these cannot match inside the audio string.
TYPE_FIELD = re.compile(rb'"type"\s*:\s*"([A-Za-z0-9_.-]{1,64})"')
CONVERSATION_FIELD = re.compile(rb'"conversation_id"\s*:\s*"([A-Za-z0-9_.:-]{1,128})"')
AGENT_FIELD = re.compile(rb'"agent_id"\s*:\s*"([A-Za-z0-9_.:-]{1,128})"')


class BodyTooLarge(ValueError):
    pass


class BadPayload(ValueError):
    pass


@dataclass
class VerifiedBody:
    file: BinaryIO
    size: int
    sha256: str


@dataclass
class ParsedEvent:
    event_type: str
    conversation_id: str
    agent_id: str
    event_timestamp: datetime | None
    payload: dict | None


def read_verified_body(stream: BinaryIO, signature_header: str | None) -> VerifiedBody:
    """The whole body, verified; raises SignatureError (401) or BodyTooLarge (413)."""
    verifier = StreamingVerifier(
        header=parse_signature_header(signature_header),
        secrets=settings.ELEVENLABS_WEBHOOK_SECRETS,
        tolerance_seconds=settings.ELEVENLABS_WEBHOOK_TOLERANCE_SECONDS,
    )
    digest = hashlib.sha256()
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - handed to the caller
    size = 0
    while chunk := stream.read(CHUNK):
        size += len(chunk)
        if size > settings.POST_CALL_MAX_BYTES:
            spool.close()
            raise BodyTooLarge(f"body larger than {settings.POST_CALL_MAX_BYTES} bytes")
        verifier.update(chunk)
        digest.update(chunk)
        spool.write(chunk)
    try:
        verifier.verify()
    except ValueError:
        spool.close()
        raise
    spool.seek(0)
    return VerifiedBody(file=spool, size=size, sha256=digest.hexdigest())


def parse_event(body: VerifiedBody) -> ParsedEvent:
    """The envelope (and, except for audio, the payload) of a verified body; BadPayload if it is not JSON."""
    if body.size > settings.POST_CALL_MAX_JSON_BYTES:
        event_type, conversation_id, agent_id = _scan_envelope(body.file)
        if event_type != AUDIO:
            body.file.seek(0)
            return _from_json(body.file)
        return ParsedEvent(event_type, conversation_id, agent_id, None, None)
    return _from_json(body.file)


def _from_json(file: BinaryIO) -> ParsedEvent:
    try:
        envelope = json.load(file)
    except (ValueError, UnicodeDecodeError):
        raise BadPayload("the body is not JSON") from None
    if not isinstance(envelope, dict):
        raise BadPayload("the body is not a JSON object")
    event_type = envelope.get("type") if isinstance(envelope.get("type"), str) else "unknown"
    data = envelope.get("data") if isinstance(envelope.get("data"), dict) else {}
    if event_type == AUDIO:
        data = {key: value for key, value in data.items() if key != "full_audio"}
        envelope = {**envelope, "data": data}
    return ParsedEvent(
        event_type=event_type[:64],
        conversation_id=_text(data.get("conversation_id"))[:128],
        agent_id=_text(data.get("agent_id"))[:128],
        event_timestamp=_timestamp(envelope.get("event_timestamp")),
        payload=envelope,
    )


def _scan_envelope(file: BinaryIO) -> tuple[str, str, str]:
    found: dict[str, str] = {}
    tail = b""
    while chunk := file.read(CHUNK):
        window = tail + chunk
        for name, pattern in (("type", TYPE_FIELD), ("conversation_id", CONVERSATION_FIELD), ("agent_id", AGENT_FIELD)):
            if name not in found and (match := pattern.search(window)):
                found[name] = match.group(1).decode()
        tail = window[-256:]
    return found.get("type", "unknown"), found.get("conversation_id", ""), found.get("agent_id", "")


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _timestamp(value: object) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return datetime.fromtimestamp(value, UTC)
    return None


def store_event(parsed: ParsedEvent, body: VerifiedBody) -> tuple[WebhookEvent, bool]:
    """Store the event (and, for a transcription, queue its processing) in one transaction.

    Idempotent on (type, conversation id) — or on the body's hash when there is no conversation id: a
    retry or replay answers with the stored event and changes nothing. Returns (event, created).
    """
    from memories.tasks import schedule_processing

    key_part = parsed.conversation_id or f"sha256:{body.sha256}"
    dedupe_key = f"{parsed.event_type}:{key_part}"[:200]
    status = WebhookEvent.Status.RECEIVED if parsed.event_type == TRANSCRIPTION else WebhookEvent.Status.RECORDED
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.create(
                event_type=parsed.event_type,
                conversation_id=parsed.conversation_id,
                agent_id=parsed.agent_id,
                dedupe_key=dedupe_key,
                event_timestamp=parsed.event_timestamp,
                status=status,
                body_bytes=body.size,
                body_sha256=body.sha256,
                payload=parsed.payload,
                user_id=_user_hint(parsed.payload),
            )
            if status == WebhookEvent.Status.RECEIVED:
                schedule_processing(event)
    except IntegrityError:
        return WebhookEvent.objects.get(dedupe_key=dedupe_key), False
    return event, True


def _user_hint(payload: dict | None) -> str:
    data = (payload or {}).get("data") or {}
    user_id = data.get("user_id") if isinstance(data, dict) else None
    return user_id[:128] if isinstance(user_id, str) else ""
