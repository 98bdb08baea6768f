"""The admin's history (LogEntry) names the objects it logs ("usr_42: I live in Lyon"); forgetting a user
must not leave those names behind. Every forgetter calls redact_log_entries for what it deletes."""

from collections.abc import Iterable

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import models

FORGOTTEN = "(forgotten)"


def redact_log_entries(model: type[models.Model], object_ids: Iterable[object]) -> int:
    """Replace the name and change message of every admin log entry about these objects; returns how many."""
    ids = [str(object_id) for object_id in object_ids]
    if not ids:
        return 0
    content_type = ContentType.objects.get_for_model(model, for_concrete_model=False)
    updated = 0
    for start in range(0, len(ids), 500):
        updated += LogEntry.objects.filter(content_type=content_type, object_id__in=ids[start : start + 500]).update(
            object_repr=FORGOTTEN, change_message=""
        )
    return updated
