"""Receiving post-call webhooks: stream the raw body, verify its signature, store the event durably.

The body is read in chunks straight from the WSGI input (so a chunked upload of tens of MB works and
Django's DATA_UPLOAD_MAX_MEMORY_SIZE does not apply), hashed for every accepted secret as it streams, and
spooled to a temporary file (in memory up to SPOOL_IN_MEMORY bytes). Bodies up to POST_CALL_MAX_JSON_BYTES
are parsed as JSON; bigger ones (post_call_audio: base64 MP3 of the whole call) are only scanned for the
envelope fields and never stored.
"""

import hashlib
import json
import tempfile
from dataclasses import dataclass
from typing import BinaryIO

from django.conf import settings
from django.db import IntegrityError, transaction

from calls import payloads, tasks
from calls.models import WebhookEvent
from calls.payloads import Envelope, EventType
from calls.signatures import StreamingVerifier, parse_signature_header

CHUNK = 64 * 1024
SPOOL_IN_MEMORY = 1024 * 1024


class BodyTooLarge(ValueError):
    pass


class BadPayload(ValueError):
    pass


@dataclass
class VerifiedBody:
    file: BinaryIO
    size: int
    sha256: str


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


def parse_event(body: VerifiedBody) -> Envelope:
    """The envelope (and, except for audio, the payload) of a verified body; BadPayload if it is not JSON."""
    if body.size > settings.POST_CALL_MAX_JSON_BYTES:
        scanned = payloads.scan_envelope(body.file)
        if scanned.event_type == EventType.AUDIO:
            return scanned
        body.file.seek(0)
    try:
        envelope = payloads.parse_envelope(json.load(body.file))
    except (ValueError, UnicodeDecodeError):
        raise BadPayload("the body is not JSON") from None
    if envelope is None:
        raise BadPayload("the body is not a JSON object")
    return envelope


def store_event(parsed: Envelope, body: VerifiedBody) -> tuple[WebhookEvent, bool]:
    """Store the event (and, for a transcription, queue its processing) in one transaction.

    Idempotent on (type, conversation id) — or on the body's hash when there is no conversation id: a
    retry or replay answers with the stored event and changes nothing. Returns (event, created).
    """
    key_part = parsed.conversation_id or f"sha256:{body.sha256}"
    dedupe_key = f"{parsed.event_type}:{key_part}"[:200]
    status = (
        WebhookEvent.Status.RECEIVED if parsed.event_type == EventType.TRANSCRIPTION else WebhookEvent.Status.RECORDED
    )
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
                user_id=payloads.payload_user_id(parsed.payload),
            )
            if status == WebhookEvent.Status.RECEIVED:
                tasks.queue_processing(event)
    except IntegrityError:
        return WebhookEvent.objects.get(dedupe_key=dedupe_key), False
    return event, True
