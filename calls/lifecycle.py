"""Forgetting a user's call records: their stored post-call events and their caller identities.

Registered with the memory engine's forget_user (calls.apps), which runs them in its transaction: the events
first, because finding events not processed yet needs the caller's phone numbers from the identities.
"""

from django.db.models import Q, TextField
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast

from calls.models import CallerIdentity, WebhookEvent
from calls.payloads import PHONE_PATHS, USER_ID_PATHS


def forget_webhook_events(user_id: str) -> int:
    """Delete the user's events, including those not processed yet (whose user_id field is still empty):
    matched on the user id the payload carries, or on the caller's phone numbers (E.164, with or without +)."""
    phones = list(CallerIdentity.objects.filter(user_id=user_id).values_list("phone_number", flat=True))
    forms = phones + [phone.lstrip("+") for phone in phones]
    user_fields = [f"user_{position}" for position in range(len(USER_ID_PATHS))]
    phone_fields = [f"phone_{position}" for position in range(len(PHONE_PATHS))]
    events = WebhookEvent.objects.annotate(
        **{name: _json_text(path) for name, path in zip(user_fields, USER_ID_PATHS, strict=True)},
        **{name: _json_text(path) for name, path in zip(phone_fields, PHONE_PATHS, strict=True)},
    )
    about_user = Q(user_id=user_id)
    for name in user_fields:
        about_user |= Q(**{name: user_id})
    for form in forms:  # exact matches: `__in` on a JSON key text breaks on SQLite ("malformed JSON")
        for name in phone_fields:
            about_user |= Q(**{name: form})
    return WebhookEvent.objects.filter(pk__in=list(events.filter(about_user).values_list("pk", flat=True))).delete()[0]


def forget_caller_identities(user_id: str) -> int:
    return CallerIdentity.objects.filter(user_id=user_id).delete()[0]


def _json_text(path: tuple[str, ...]) -> Cast:
    """The payload's value at `path` as plain text (SQLite would otherwise parse the value as JSON)."""
    source = "payload"
    for key in path[:-1]:
        source = KeyTransform(key, source)
    return Cast(KeyTextTransform(path[-1], source), output_field=TextField())
