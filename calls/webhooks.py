"""Receiving post-call webhooks: stream the raw body, verify its signature, store the event durably.

The body is read in chunks straight from the WSGI input (so a chunked upload of tens of MB works and
Django's DATA_UPLOAD_MAX_MEMORY_SIZE does not apply), hashed for every accepted secret as it streams, and
spooled to a temporary file (in memory up to SPOOL_IN_MEMORY bytes). Bodies up to POST_CALL_MAX_JSON_BYTES
are parsed as JSON; bigger ones (post_call_audio: base64 MP3 of the whole call) are only scanned for the
envelope fields and never stored.
"""

import hashlib
import logging
import tempfile
from dataclasses import dataclass
from typing import BinaryIO

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from calls import payloads, tasks
from calls.models import WebhookEvent
from calls.payloads import Envelope, EventType
from calls.signatures import StreamingVerifier, parse_signature_header
from calls.spaces import event_space_at_arrival, webhook_space_secrets
from core.json_input import JSONInputError, load_json

logger = logging.getLogger(__name__)

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
    signed_for_space: str = ""  # the slug a space-bound secret (ELEVENLABS_WEBHOOK_SPACE_SECRETS) signed it for


def read_verified_body(stream: BinaryIO, signature_header: str | None) -> VerifiedBody:
    """The whole body, verified; raises SignatureError (401) or BodyTooLarge (413)."""
    shared = [secret for secret in settings.ELEVENLABS_WEBHOOK_SECRETS if secret]
    bound = webhook_space_secrets()
    verifier = StreamingVerifier(
        header=parse_signature_header(signature_header),
        secrets=[*shared, *(secret for _, secret in bound)],
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
        signer = verifier.verify()
    except ValueError:
        spool.close()
        raise
    spool.seek(0)
    slug = bound[signer - len(shared)][0] if signer >= len(shared) else ""
    return VerifiedBody(file=spool, size=size, sha256=digest.hexdigest(), signed_for_space=slug)


def parse_event(body: VerifiedBody) -> Envelope:
    """The envelope (and, except for audio, the payload) of a verified body; BadPayload when it cannot be used."""
    if body.size > settings.POST_CALL_MAX_JSON_BYTES:
        scanned = payloads.scan_envelope(body.file)
        if scanned.event_type == EventType.AUDIO:
            return scanned
        raise BadPayload(f"a {body.size}-byte body that is not audio is too big to process")
    try:
        envelope = payloads.parse_envelope(load_json(body.file.read()))
    except JSONInputError as error:
        raise BadPayload(str(error)) from None
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
    space_id, refusal = event_space_at_arrival(parsed.agent_id, body.signed_for_space)
    if refusal:
        status = WebhookEvent.Status.FAILED
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.create(
                event_type=parsed.event_type,
                conversation_id=parsed.conversation_id,
                agent_id=parsed.agent_id,
                space_id=space_id,
                dedupe_key=dedupe_key,
                event_timestamp=parsed.event_timestamp,
                status=status,
                body_bytes=body.size,
                body_sha256=body.sha256,
                payload=parsed.payload,
                user_id=payloads.payload_user_id(parsed.payload),
                last_error=refusal,
                next_attempt_at=timezone.now() if status == WebhookEvent.Status.RECEIVED else None,
            )
            if status == WebhookEvent.Status.RECEIVED:
                tasks.queue_processing(event)
    except IntegrityError:
        return WebhookEvent.objects.get(dedupe_key=dedupe_key), False
    return event, True


def quarantine_event(body: VerifiedBody, problem: str) -> tuple[WebhookEvent, bool]:
    """Keep an authenticated body that cannot be processed, raw, for an operator: never processed, never lost,
    and answered 200 so ElevenLabs does not retry it forever. Idempotent on the body's hash."""
    body.file.seek(0)
    raw = body.file.read()
    dedupe_key = f"quarantined:sha256:{body.sha256}"
    event, created = WebhookEvent.objects.get_or_create(
        dedupe_key=dedupe_key,
        defaults={
            "event_type": "unknown",
            "status": WebhookEvent.Status.QUARANTINED,
            "body_bytes": body.size,
            "body_sha256": body.sha256,
            "raw_body": raw,
            "last_error": problem,
        },
    )
    if created:
        logger.warning("post-call body quarantined", extra={"event_id": event.pk, "problem": problem})
    return event, created
