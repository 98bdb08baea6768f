"""Processing a stored post-call event: claim it, work out what to remember, store it in one short transaction.

1. Claim: one UPDATE moves a waiting event (or one whose claim's lease ran out) to `processing` with a fresh
   claim token and a lease of WEBHOOK_LEASE_SECONDS. A worker that dies leaves a lease that runs out; the
   sweeper (calls.tasks) then retries the event, no operator needed.
2. Prepare, outside any transaction: who called, what to remember (rules or the LLM), and the embeddings. This
   is where a provider or an LLM may be slow, and no lock is held meanwhile (SQLite has one write lock for the
   whole database: a transaction held during a provider call made webhooks wait and fail).
3. Store, in one transaction: only if the claim is still ours, the memories and the event's new status.

`process_webhook_event` queues nothing: it returns an `Outcome` and calls.tasks acts on it. Processing is
idempotent: memories are deduped per user, so a retry after a crash reinforces instead of duplicating.
"""

import logging
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

import openai
from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.utils import timezone

from calls import payloads
from calls.extraction import extract_memories_from_transcript
from calls.identity import resolve_caller
from calls.llm_extraction import ExtractedFact, extract_with_llm
from calls.models import WebhookEvent
from calls.spaces import space_of_agent
from embeddings.errors import EmbeddingProviderError
from memories.models import MemoryLink, Space
from memories.owners import Owner
from memories.reinforcement import reinforce
from memories.services import PreparedMemory, link_memories, prepare_memories, store_memories, supersede_memory

logger = logging.getLogger(__name__)

# Worth another attempt: the provider or the LLM down or slow, the database away for a moment.
TRANSIENT_ERRORS = (EmbeddingProviderError, openai.APIError, DatabaseError, TimeoutError)
LOST_CLAIM = "claim lost"


class ClaimLost(Exception):
    """The event's lease ran out and another worker claimed it: this worker's work is dropped."""


class NoSpace(Exception):
    """The event's agent is registered to no memory space (and the default space takes no unregistered agents)."""


@dataclass
class IngestResult:
    owner: Owner
    created: int
    reinforced: int
    superseded: int = 0


@dataclass(frozen=True)
class Outcome:
    """What processing an event came to, and what should follow."""

    status: str
    owner: Owner | None = None
    memories_created: int = 0
    retry_in_seconds: float | None = None  # set when a transient failure should be retried


@dataclass
class PreparedCall:
    """Everything to store for one call, computed before the store's transaction: the memories, and for the last
    `len(facts)` of them (the LLM's facts) what to do with each."""

    owner: Owner
    memories: list[PreparedMemory]
    facts: list[ExtractedFact] = field(default_factory=list)


def post_call_user(space_id: int, data: dict) -> Owner | None:
    """The user a post-call transcription is about, in space `space_id`: our user id if the call carries it, else
    the caller's phone number through the space's identities (a new number gets a new user)."""
    caller = resolve_caller(space_id, payloads.post_call_caller(data), record_call=False)
    return caller.owner if caller else None


def event_space(event: WebhookEvent) -> int:
    """The event's space: recorded when it arrived, else its agent's space now (registered since); NoSpace."""
    space_id = event.space_id or space_of_agent(event.agent_id)
    if space_id is None:
        raise NoSpace(
            f"agent {event.agent_id or '(none)'} is registered to no memory space: register it in the admin "
            "(Agents), then replay this event"
        )
    return space_id


def prepare_call(space_id: int, payload: dict) -> PreparedCall | None:
    """Who called and what to remember, embedded; None when the payload names no caller. No transaction."""
    data = payloads.event_data(payload)
    owner = post_call_user(space_id, data)
    if owner is None:
        return None
    items = extract_memories_from_transcript(data)
    model = extraction_model(space_id)
    facts = extract_with_llm(owner, data, model) if model else []
    stored_facts = [fact for fact in facts if fact.action != "reinforce"]
    return PreparedCall(owner, prepare_memories([*items, *(fact.memory for fact in stored_facts)]), facts)


def extraction_model(space_id: int) -> str:
    """The LLM that extracts facts from the space's calls (its own, else EXTRACTION_LLM_MODEL); empty: none."""
    own = Space.objects.filter(pk=space_id).values_list("extraction_model", flat=True).first()
    return own or settings.EXTRACTION_LLM_MODEL


def store_call(call: PreparedCall) -> IngestResult:
    """Store a prepared call (inside the caller's transaction)."""
    stored = store_memories(call.owner, call.memories, link_together=True)
    result = IngestResult(
        owner=call.owner,
        created=sum(item.created for item in stored),
        reinforced=sum(not item.created for item in stored),
    )
    reinforced = [fact.target.pk for fact in call.facts if fact.action == "reinforce" and fact.target is not None]
    if reinforced:
        reinforce(reinforced)
        result.reinforced += len(reinforced)
    stored_facts = [fact for fact in call.facts if fact.action != "reinforce"]
    for fact, item in zip(stored_facts, stored[len(stored) - len(stored_facts) :], strict=True):
        if not item.created or fact.target is None or fact.target.pk == item.memory.pk:
            continue
        if fact.action == "supersede":
            supersede_memory(fact.target, item.memory)
            result.superseded += 1
        else:
            link_memories(fact.target, item.memory, weight=0.5, reason=MemoryLink.Reason.SIMILAR)
    return result


def claim_event(event_id: int) -> WebhookEvent | None:
    """Claim a waiting event, or one whose claim expired, for WEBHOOK_LEASE_SECONDS; None if not claimable."""
    now = timezone.now()
    token = secrets.token_hex(16)
    claimable = Q(status__in=WebhookEvent.WAITING) | Q(status=WebhookEvent.Status.PROCESSING, lease_expires_at__lte=now)
    claimed = (
        WebhookEvent.objects.filter(claimable, pk=event_id).update(
            status=WebhookEvent.Status.PROCESSING,
            attempts=F("attempts") + 1,
            claim_token=token,
            lease_expires_at=now + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS),
        )
        == 1
    )
    return WebhookEvent.objects.filter(pk=event_id, claim_token=token).first() if claimed else None


def process_webhook_event(event_id: int) -> Outcome:
    """Process one stored event. Safe to call twice (the second call does nothing and reports the status)."""
    event = claim_event(event_id)
    if event is None:
        status = WebhookEvent.objects.filter(pk=event_id).values_list("status", flat=True).first()
        return Outcome(status=status or "missing")
    try:
        event.space_id = event_space(event)
        call = prepare_call(event.space_id, event.payload or {})
        with transaction.atomic():
            if not _still_claimed(event):
                raise ClaimLost
            result = store_call(call) if call is not None else None
            _finish(event, result)
    except ClaimLost:
        logger.warning("post-call event claimed by another worker meanwhile", extra={"event_id": event.pk})
        return Outcome(status=LOST_CLAIM)
    except NoSpace as problem:  # nothing to retry until an operator registers the agent (then: replay)
        logger.error("post-call event of an agent without a space", extra={"event_id": event.pk})
        _release(event, WebhookEvent.Status.FAILED, str(problem))
        return Outcome(status=WebhookEvent.Status.FAILED)
    except TRANSIENT_ERRORS as error:
        return _retry_or_fail(event, error)
    except Exception as error:  # a bug or a payload we cannot handle: keep the event, mark it failed
        logger.exception("post-call event failed", extra={"event_id": event.pk})
        _release(event, WebhookEvent.Status.FAILED, f"{type(error).__name__}: {error}")
        return Outcome(status=WebhookEvent.Status.FAILED)
    logger.info(
        "post-call event processed",
        extra={"event_id": event.pk, "status": event.status, "memories_created": event.memories_created},
    )
    owner = Owner(event.space_id, event.user_id) if event.user_id else None
    return Outcome(status=event.status, owner=owner, memories_created=event.memories_created)


def _still_claimed(event: WebhookEvent) -> bool:
    """Locks the event row (PostgreSQL; SQLite's transaction holds the write lock) if this claim still holds it."""
    return (
        WebhookEvent.objects.select_for_update()
        .filter(pk=event.pk, status=WebhookEvent.Status.PROCESSING, claim_token=event.claim_token)
        .exists()
    )


def _finish(event: WebhookEvent, result: IngestResult | None) -> None:
    if result is None:
        event.status = WebhookEvent.Status.IGNORED
        event.last_error = "no caller identity: neither a user id nor a phone number in the payload"
    else:
        event.status = WebhookEvent.Status.PROCESSED
        event.user_id = result.owner.user_id
        event.memories_created = result.created
        event.memories_reinforced = result.reinforced
        event.last_error = ""
    event.processed_at = timezone.now()
    event.lease_expires_at = None
    event.claim_token = ""
    event.save(
        update_fields=[
            "status",
            "space",
            "user_id",
            "memories_created",
            "memories_reinforced",
            "last_error",
            "processed_at",
            "lease_expires_at",
            "claim_token",
        ]
    )


def _retry_or_fail(event: WebhookEvent, error: Exception) -> Outcome:
    message = f"{type(error).__name__}: {error}"
    if event.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        logger.error("post-call event failed after the last attempt", extra={"event_id": event.pk, "error": message})
        released = _release(event, WebhookEvent.Status.FAILED, message)
        return Outcome(status=WebhookEvent.Status.FAILED if released else LOST_CLAIM)
    delay = retry_delay(event.attempts)
    logger.warning("post-call event will be retried", extra={"event_id": event.pk, "delay": delay, "error": message})
    if not _release(event, WebhookEvent.Status.RETRYING, message, next_attempt_in=delay):
        return Outcome(status=LOST_CLAIM)
    return Outcome(status=WebhookEvent.Status.RETRYING, retry_in_seconds=delay)


def retry_delay(attempts: int) -> float:
    """Exponential backoff: WEBHOOK_RETRY_BASE_SECONDS, then twice that, and so on."""
    return settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1)


def _release(event: WebhookEvent, status: str, error: str, next_attempt_in: float | None = None) -> bool:
    """Give up the claim with a new status; False if the claim was no longer ours (nothing changed).

    Tried twice: the failure being recorded may itself be a database blip. If the database stays away, the
    lease runs out and the sweeper retries the event.
    """
    values = {"status": status, "last_error": error[:2000], "lease_expires_at": None, "claim_token": ""}
    if next_attempt_in is not None:
        values["next_attempt_at"] = timezone.now() + timedelta(seconds=next_attempt_in)
    for attempt in range(2):
        try:
            released = WebhookEvent.objects.filter(pk=event.pk, claim_token=event.claim_token).update(**values) == 1
        except DatabaseError:
            if attempt:
                logger.warning(
                    "could not record the event's failure; its lease will run out", extra={"event_id": event.pk}
                )
                return False
            continue
        if released:
            event.status = status
        return released
    return False
