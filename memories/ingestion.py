"""Processing a stored post-call event: who called, what to remember, stored in one transaction.

Transient failures (the embedding provider or the LLM down, a database hiccup) are retried with exponential
backoff up to WEBHOOK_MAX_ATTEMPTS; after the last attempt the event is marked failed and can be replayed
(`manage.py replay_webhooks`). Processing is idempotent: memories are deduped per user, so a replay of an
already processed call reinforces instead of duplicating.
"""

import logging
from dataclasses import dataclass

import openai
from django.conf import settings
from django.db import OperationalError, transaction
from django.db.models import Q, TextField
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast
from django.utils import timezone

from embeddings.errors import EmbeddingProviderError
from memories.extraction import extract_memories_from_transcript
from memories.identity import resolve_caller
from memories.models import CallerIdentity, WebhookEvent
from memories.services import create_memories, link_memories, supersede_memory
from memories.tasks import schedule_processing

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS = (EmbeddingProviderError, openai.APIError, OperationalError, TimeoutError)
PROCESSABLE = (WebhookEvent.Status.RECEIVED, WebhookEvent.Status.RETRYING)


@dataclass
class IngestResult:
    user_id: str
    created: int
    reinforced: int
    superseded: int = 0


def post_call_user(data: dict) -> str | None:
    """The user a post-call transcription is about: our user id if the call carries it, else the caller's
    phone number through the identity table (a new number gets a new user)."""
    client_data = data.get("conversation_initiation_client_data") or {}
    variables = client_data.get("dynamic_variables") if isinstance(client_data, dict) else None
    variables = variables if isinstance(variables, dict) else {}
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    phone_call = metadata.get("phone_call") if isinstance(metadata.get("phone_call"), dict) else {}
    explicit = data.get("user_id") or variables.get("user_id")
    phone = phone_call.get("external_number") or variables.get("system__caller_id")
    caller = resolve_caller(phone=phone, explicit_user_id=explicit, record_call=False)
    return caller.user_id if caller else None


def ingest_transcription(payload: dict) -> IngestResult | None:
    data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
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
    from memories.llm_extraction import extract_with_llm
    from memories.scoring import reinforce

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
            link_memories(fact.target, item.memory, weight=0.5, reason="similar")
    return result


def process_webhook_event(event_id: int) -> str:
    """Process one stored event; returns its new status. Safe to call twice (the second call does nothing)."""
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update().filter(pk=event_id).first()
        if event is None or event.status not in PROCESSABLE:
            return event.status if event else "missing"
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
        return event.status
    logger.info(
        "post-call event processed",
        extra={"event_id": event.pk, "status": event.status, "memories_created": event.memories_created},
    )
    if event.memories_created:
        _index_if_heavy(event.user_id)
    return event.status


def _index_if_heavy(user_id: str) -> None:
    """Queue a dedicated vector index for a user who has just become heavy; never fails the event for it."""
    from memories.user_indexes import schedule_if_needed

    try:
        if schedule_if_needed(user_id):
            logger.info("dedicated vector index queued", extra={"user_id": user_id})
    except Exception:
        logger.exception("could not queue a dedicated vector index", extra={"user_id": user_id})


def _retry_or_fail(event: WebhookEvent, error: Exception) -> str:
    message = f"{type(error).__name__}: {error}"
    if event.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        logger.error("post-call event failed after the last attempt", extra={"event_id": event.pk, "error": message})
        _mark(event, WebhookEvent.Status.FAILED, message)
        return event.status
    delay = settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** (event.attempts - 1)
    logger.warning("post-call event will be retried", extra={"event_id": event.pk, "delay": delay, "error": message})
    with transaction.atomic():
        _mark(event, WebhookEvent.Status.RETRYING, message)
        schedule_processing(event, delay_seconds=delay)
    return event.status


def _mark(event: WebhookEvent, status: str, error: str) -> None:
    event.status = status
    event.last_error = error[:2000]
    event.save(update_fields=["status", "last_error"])


def replay_event(event: WebhookEvent) -> bool:
    """Queue a failed (or stuck) transcription again, with a fresh attempt budget; False if not replayable."""
    if event.event_type != "post_call_transcription" or not event.payload:
        return False
    with transaction.atomic():
        WebhookEvent.objects.filter(pk=event.pk).update(status=WebhookEvent.Status.RECEIVED, attempts=0, last_error="")
        schedule_processing(event)
    return True


def forget_webhook_events(user_id: str) -> int:
    """Delete the user's events, including those not processed yet (whose user_id field is still empty):
    matched on the user id the payload carries, or on the caller's phone numbers (E.164, with or without +).
    Runs before the caller identities are deleted (memories.apps registers it first)."""
    phones = list(CallerIdentity.objects.filter(user_id=user_id).values_list("phone_number", flat=True))
    forms = phones + [phone.lstrip("+") for phone in phones]
    data = KeyTransform("data", "payload")
    variables = KeyTransform("dynamic_variables", KeyTransform("conversation_initiation_client_data", data))
    phone_call = KeyTransform("phone_call", KeyTransform("metadata", data))

    def text(key: str, source) -> Cast:  # compared as plain text (SQLite would otherwise parse the value as JSON)
        return Cast(KeyTextTransform(key, source), output_field=TextField())

    events = WebhookEvent.objects.annotate(
        payload_user=text("user_id", data),
        variables_user=text("user_id", variables),
        variables_caller=text("system__caller_id", variables),
        external_number=text("external_number", phone_call),
    )
    about_user = Q(user_id=user_id) | Q(payload_user=user_id) | Q(variables_user=user_id)
    for form in forms:  # exact matches: `__in` on a JSON key text breaks on SQLite ("malformed JSON")
        about_user |= Q(variables_caller=form) | Q(external_number=form)
    return WebhookEvent.objects.filter(pk__in=list(events.filter(about_user).values_list("pk", flat=True))).delete()[0]
