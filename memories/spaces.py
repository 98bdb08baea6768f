"""Which memory spaces a person may see, and the space an operator's request names.

Superusers and holders of `memories.access_all_spaces` see every space; other staff see the spaces they were added
to (Space.staff). The admin and the operator API both apply this to every list, object and action, and a space
someone may not see answers exactly like one that does not exist.
"""

import re

from django.db.models import QuerySet

from memories.models import Space
from memories.owners import DEFAULT_SPACE_ID

DEFAULT_SPACE_SLUG = "default"
SLUG = re.compile(r"[-a-zA-Z0-9_]{1,64}")


class UnknownSpace(LookupError):
    """No space of that name that this person may see."""


def visible_space_ids(person) -> set[int] | None:
    """The ids of the spaces `person` may see; None when they may see every space."""
    if person is None or not person.is_authenticated or not person.is_active:
        return set()
    if person.is_superuser or person.has_perm("memories.access_all_spaces"):
        return None
    return set(person.memory_spaces.values_list("id", flat=True))


def restrict_to_visible(queryset: QuerySet, person, field: str = "space") -> QuerySet:
    """`queryset` without the rows of spaces `person` may not see (`field` names the space foreign key)."""
    allowed = visible_space_ids(person)
    if allowed is None:
        return queryset
    return queryset.filter(**{f"{field}__in": allowed})


def may_see(person, space_id: int) -> bool:
    allowed = visible_space_ids(person)
    return allowed is None or space_id in allowed


def visible_space(person, slug: str | None) -> Space:
    """The space named `slug` (the default space when None) if `person` may see it; UnknownSpace otherwise (also
    for what cannot be a slug: no lookup is made with it)."""
    if slug and not SLUG.fullmatch(slug):
        raise UnknownSpace("no memory space of that name that you may see")
    space = Space.objects.filter(slug=slug).first() if slug else Space.objects.filter(pk=DEFAULT_SPACE_ID).first()
    if space is None or not may_see(person, space.pk):
        raise UnknownSpace(f"no memory space {slug or DEFAULT_SPACE_SLUG!r} that you may see")
    return space
