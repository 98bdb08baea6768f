"""Who a call is about: phone numbers map to one user id; web calls carry the user id explicitly."""

import secrets
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from memories.models import CallerIdentity
from memories.phone import normalize_phone_number

USER_ID_FIELDS = ("user_id", "caller_id", "system__caller_id")
USER_ID_PREFIX = "usr_"


@dataclass(frozen=True)
class ResolvedCaller:
    user_id: str
    known: bool  # the phone number (or user id) had been seen before this call
    phone_number: str | None = None


def new_user_id() -> str:
    return USER_ID_PREFIX + secrets.token_hex(8)


def resolve_caller(
    phone: object = None, explicit_user_id: object = None, record_call: bool = True
) -> ResolvedCaller | None:
    """The user behind a call.

    An explicit user id (web calls, or our own id echoed back by the agent) wins. Otherwise the phone number
    is normalised to E.164 and looked up; an unknown number gets a new user id. None when the call carries
    neither a usable number nor a user id.
    """
    if isinstance(explicit_user_id, str) and explicit_user_id.strip():
        user_id = explicit_user_id.strip()
        return ResolvedCaller(user_id=user_id, known=_user_known(user_id))
    number = normalize_phone_number(phone)
    if number is None:
        return None
    identity = CallerIdentity.objects.filter(phone_number=number).first()
    if identity is None:
        try:
            with transaction.atomic():
                identity = CallerIdentity.objects.create(phone_number=number, user_id=new_user_id())
            known = False
        except IntegrityError:  # the same new caller, resolved concurrently
            identity = CallerIdentity.objects.get(phone_number=number)
            known = True
    else:
        known = True
    if record_call:
        from memories.scoring import relaxed_commit

        with relaxed_commit():
            CallerIdentity.objects.filter(pk=identity.pk).update(calls=F("calls") + 1, last_seen_at=timezone.now())
    return ResolvedCaller(user_id=identity.user_id, known=known, phone_number=number)


def _user_known(user_id: str) -> bool:
    from memories.models import Memory

    return Memory.objects.filter(user_id=user_id).exists() or CallerIdentity.objects.filter(user_id=user_id).exists()


def user_id_from_tool_body(body: dict) -> object:
    """The user id a tool call carries: our `user_id`, else the caller's number mapped through the identities.

    A phone number that maps to no known user is returned as given: it then matches no memories.
    """
    explicit = body.get("user_id")
    if explicit not in (None, ""):
        return explicit
    for name in ("caller_id", "system__caller_id"):
        value = body.get(name)
        if value in (None, ""):
            continue
        number = normalize_phone_number(value) if isinstance(value, str) else None
        if number:
            identity = CallerIdentity.objects.filter(phone_number=number).only("user_id").first()
            if identity is not None:
                return identity.user_id
        return value
    return None


def forget_caller_identities(user_id: str) -> int:
    return CallerIdentity.objects.filter(user_id=user_id).delete()[0]
