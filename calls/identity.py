"""Who a call is about: within a memory space, a phone number maps to one user id; web calls carry the user id
explicitly. The same number in two spaces is two users."""

import secrets
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from calls.models import CallerIdentity
from calls.payloads import CallerHint
from calls.phone import normalize_phone_number
from memories.database import relaxed_commit
from memories.models import Memory
from memories.owners import Owner

USER_ID_PREFIX = "usr_"
MAX_USER_ID_CHARS = 128


@dataclass(frozen=True)
class ResolvedCaller:
    owner: Owner
    known: bool  # the phone number (or user id) had been seen before this call, in this space
    phone_number: str | None = None

    @property
    def user_id(self) -> str:
        return self.owner.user_id


def new_user_id() -> str:
    return USER_ID_PREFIX + secrets.token_hex(8)


def resolve_caller(space_id: int, hint: CallerHint, record_call: bool = True) -> ResolvedCaller | None:
    """The user behind a call, in space `space_id`.

    An explicit user id (web calls, or our own id echoed back by the agent) wins. Otherwise the phone number
    is normalised to E.164 and looked up; an unknown number gets a new user id. None when the call carries
    neither a usable number nor a user id.
    """
    user_id = (hint.user_id or "").strip()
    if user_id and len(user_id) <= MAX_USER_ID_CHARS:  # a longer id is no id of ours: never cut it into another
        owner = Owner(space_id, user_id)
        return ResolvedCaller(owner=owner, known=_user_known(owner))
    number = normalize_phone_number(hint.phone)
    if number is None:
        return None
    identity = CallerIdentity.objects.filter(space_id=space_id, phone_number=number).first()
    if identity is None:
        try:
            with transaction.atomic():
                identity = CallerIdentity.objects.create(space_id=space_id, phone_number=number, user_id=new_user_id())
            known = False
        except IntegrityError:  # the same new caller, resolved concurrently
            identity = CallerIdentity.objects.get(space_id=space_id, phone_number=number)
            known = True
    else:
        known = True
    if record_call:
        with relaxed_commit():
            CallerIdentity.objects.filter(pk=identity.pk).update(calls=F("calls") + 1, last_seen_at=timezone.now())
    return ResolvedCaller(owner=Owner(space_id, identity.user_id), known=known, phone_number=number)


def _user_known(owner: Owner) -> bool:
    return (
        Memory.objects.for_user(owner).exists()
        or CallerIdentity.objects.filter(space_id=owner.space_id, user_id=owner.user_id).exists()
    )


def tool_user_id(space_id: int, user_id: object, phone: object) -> object:
    """The user id a tool call is about: our `user_id` as sent, else the caller's number mapped through the
    identities (calls.payloads.tool_caller gives both).

    Raw values, for the tool's serializer to judge. A phone number that maps to no known user is returned as
    given: it then matches no memories.
    """
    if user_id is not None:
        return user_id
    number = normalize_phone_number(phone) if isinstance(phone, str) else None
    if number:
        identity = CallerIdentity.objects.filter(space_id=space_id, phone_number=number).only("user_id").first()
        if identity is not None:
            return identity.user_id
    return phone


def remembering_user_id(space_id: int, user_id: object, phone: object) -> object:
    """The user a remember-tool call stores for: our `user_id` as sent, else the owner of the caller's number,
    given one now if the number is new (what is remembered must reach the caller's next calls, not an orphan
    keyed by a phone string). A user id passes through as sent, for the serializer to judge; None when there is
    neither a user id nor a usable number."""
    if user_id is not None or not isinstance(phone, str):
        return user_id
    caller = resolve_caller(space_id, CallerHint(phone=phone), record_call=False)
    return caller.user_id if caller is not None else None
