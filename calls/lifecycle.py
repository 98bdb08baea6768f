"""A user's call records (their post-call events and caller identities): forgetting and exporting them.

Registered with the memory engine (calls.apps): forget_user runs the forgetters in its transaction (the events
first, because finding events not processed yet needs the caller's phone numbers from the identities), and the
export endpoint puts the exports beside the memories.
"""

from django.db.models import Q, QuerySet, TextField
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast

from calls.models import CallerIdentity, WebhookEvent
from calls.payloads import PHONE_PATHS, USER_ID_PATHS
from core.admin_log import redact_log_entries
from memories.owners import Owner


def identities_of(owner: Owner) -> QuerySet[CallerIdentity]:
    return CallerIdentity.objects.filter(space_id=owner.space_id, user_id=owner.user_id)


def events_of(owner: Owner, unassigned: bool = False) -> QuerySet[WebhookEvent]:
    """The user's events in their space, including those not processed yet (whose user_id field is still empty):
    matched on the user id the payload carries, or on the caller's phone numbers (E.164, with or without +).
    With `unassigned`, also the matching events that belong to no space yet (an agent registered nowhere):
    forgetting removes those too, exporting does not show them (they may be another space's caller)."""
    user_id = owner.user_id
    phones = list(identities_of(owner).values_list("phone_number", flat=True))
    forms = phones + [phone.lstrip("+") for phone in phones]
    user_fields = [f"user_{position}" for position in range(len(USER_ID_PATHS))]
    phone_fields = [f"phone_{position}" for position in range(len(PHONE_PATHS))]
    in_space = Q(space_id=owner.space_id) | Q(space__isnull=True) if unassigned else Q(space_id=owner.space_id)
    events = WebhookEvent.objects.filter(in_space).annotate(
        **{name: _json_text(path) for name, path in zip(user_fields, USER_ID_PATHS, strict=True)},
        **{name: _json_text(path) for name, path in zip(phone_fields, PHONE_PATHS, strict=True)},
    )
    about_user = Q(user_id=user_id)
    for name in user_fields:
        about_user |= Q(**{name: user_id})
    for form in forms:  # exact matches: `__in` on a JSON key text breaks on SQLite ("malformed JSON")
        for name in phone_fields:
            about_user |= Q(**{name: form})
    return WebhookEvent.objects.filter(pk__in=list(events.filter(about_user).values_list("pk", flat=True)))


def forget_webhook_events(owner: Owner) -> int:
    event_ids = list(events_of(owner, unassigned=True).values_list("pk", flat=True))
    redact_log_entries(WebhookEvent, event_ids)
    return WebhookEvent.objects.filter(pk__in=event_ids).delete()[0]


def forget_caller_identities(owner: Owner) -> int:
    identities = identities_of(owner)
    redact_log_entries(CallerIdentity, identities.values_list("pk", flat=True))
    return identities.delete()[0]


EXPORTED_EVENT_FIELDS = (
    "id",
    "event_type",
    "conversation_id",
    "agent_id",
    "status",
    "event_timestamp",
    "received_at",
    "processed_at",
    "memories_created",
    "memories_reinforced",
    "body_bytes",
    "payload_erased_at",
)


def export_webhook_events(owner: Owner) -> list[dict]:
    """The user's events as metadata (what was received when, and what came of it), never the transcript: the
    memories made from it are exported beside."""
    return list(events_of(owner).order_by("received_at", "pk").values(*EXPORTED_EVENT_FIELDS))


def export_caller_identities(owner: Owner) -> list[dict]:
    rows = identities_of(owner).order_by("created_at")
    return list(rows.values("phone_number", "calls", "created_at", "last_seen_at"))


def _json_text(path: tuple[str, ...]) -> Cast:
    """The payload's value at `path` as plain text (SQLite would otherwise parse the value as JSON)."""
    source = "payload"
    for key in path[:-1]:
        source = KeyTransform(key, source)
    return Cast(KeyTextTransform(path[-1], source), output_field=TextField())
