"""Processing a stored post-call event: who called, what to remember, stored in one transaction.

`process_webhook_event` claims the event, ingests it and records the result; it queues nothing and returns an
`Outcome` that says what should happen next (calls.tasks acts on it: a retry after a transient failure, a
dedicated index for a user who has become heavy). Processing is idempotent: memories are deduped per user, so
a replay of an already processed call reinforces instead of duplicating.
"""

import logging
from dataclasses import dataclass

import openai
from django.conf import settings
from django.db import OperationalError, transaction
from django.utils import timezone

from calls import payloads
from calls.extraction import extract_memories_from_transcript
from calls.identity import resolve_caller
from calls.llm_extraction import extract_with_llm
from calls.models import WebhookEvent
from embeddings.errors import EmbeddingProviderError
from memories.models import MemoryLink
from memories.reinforcement import reinforce
from memories.services import create_memories, link_memories, supersede_memory

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS = (EmbeddingProviderError, openai.APIError, OperationalError, TimeoutError)
PROCESSABLE = (WebhookEvent.Status.RECEIVED, WebhookEvent.Status.RETRYING)


@dataclass
class IngestResult:
    user_id: str
    created: int
    reinforced: int
    superseded: int = 0


@dataclass(frozen=True)
class Outcome:
    """What processing an event came to, and what should follow."""

    status: str
    user_id: str = ""
    memories_created: int = 0
    retry_in_seconds: float | None = None  # set when a transient failure should be retried


def post_call_user(data: dict) -> str | None:
    """The user a post-call transcription is about: our user id if the call carries it, else the caller's
    phone number through the identity table (a new number gets a new user)."""
    caller = resolve_caller(payloads.post_call_caller(data), record_call=False)
    return caller.user_id if caller else None


def ingest_transcription(payload: dict) -> IngestResult | None:
    data = payloads.event_data(payload)
    user_id = post_call_user(data)
    if user_id is None:
        return None
    if settings.EXTRACTION_LLM_MODEL:
        return _ingest_with_llm(user_id, data)
    stored = create_memories(user_id, extract_memories_from_transcript(data), link_together=True)
    return IngestResult(
        user_id=user_id,
        created=sum(item.created for item in stored),
        reinforced=sum(not item.created for item in stored),
    )


def _ingest_with_llm(user_id: str, data: dict) -> IngestResult:
    facts = extract_with_llm(user_id, data)
    to_store = [fact for fact in facts if fact.action != "reinforce"]
    stored = create_memories(user_id, [fact.memory for fact in to_store], link_together=True)
    result = IngestResult(user_id=user_id, created=sum(item.created for item in stored), reinforced=0)
    for fact in facts:
        if fact.action == "reinforce" and fact.target is not None:
            reinforce([fact.target.pk])
            result.reinforced += 1
    for fact, item in zip(to_store, stored, strict=True):
        if not item.created:
            result.reinforced += 1
        elif fact.action == "supersede" and fact.target is not None and fact.target.pk != item.memory.pk:
            supersede_memory(fact.target, item.memory)
            result.superseded += 1
        elif fact.target is not None:
            link_memories(fact.target, item.memory, weight=0.5, reason=MemoryLink.Reason.SIMILAR)
    return result


def process_webhook_event(event_id: int) -> Outcome:
    """Process one stored event. Safe to call twice (the second call does nothing and reports the status)."""
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update().filter(pk=event_id).first()
        if event is None or event.status not in PROCESSABLE:
            return Outcome(status=event.status if event else "missing")
        event.status = WebhookEvent.Status.PROCESSING
        event.attempts += 1
        event.save(update_fields=["status", "attempts"])
    try:
        with transaction.atomic():
            result = ingest_transcription(event.payload or {})
            if result is None:
                event.status = WebhookEvent.Status.IGNORED
                event.last_error = "no caller identity: neither a user id nor a phone number in the payload"
            else:
                event.status = WebhookEvent.Status.PROCESSED
                event.user_id = result.user_id
                event.memories_created = result.created
                event.memories_reinforced = result.reinforced
                event.last_error = ""
            event.processed_at = timezone.now()
            event.save()
    except TRANSIENT_ERRORS as error:
        return _retry_or_fail(event, error)
    except Exception as error:  # a bug or a payload we cannot handle: keep the event, mark it failed
        logger.exception("post-call event failed", extra={"event_id": event.pk})
        _mark(event, WebhookEvent.Status.FAILED, f"{type(error).__name__}: {error}")
        return Outcome(status=event.status)
    logger.info(
        "post-call event processed",
        extra={"event_id": event.pk, "status": event.status, "memories_created": event.memories_created},
    )
    return Outcome(status=event.status, user_id=event.user_id, memories_created=event.memories_created)


def _retry_or_fail(event: WebhookEvent, error: Exception) -> Outcome:
    message = f"{type(error).__name__}: {error}"
    if event.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        logger.error("post-call event failed after the last attempt", extra={"event_id": event.pk, "error": message})
        _mark(event, WebhookEvent.Status.FAILED, message)
        return Outcome(status=event.status)
    delay = settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** (event.attempts - 1)
    logger.warning("post-call event will be retried", extra={"event_id": event.pk, "delay": delay, "error": message})
    _mark(event, WebhookEvent.Status.RETRYING, message)
    return Outcome(status=event.status, retry_in_seconds=delay)


def _mark(event: WebhookEvent, status: str, error: str) -> None:
    event.status = status
    event.last_error = error[:2000]
    event.save(update_fields=["status", "last_error"])
