"""Retention: a finished post-call event keeps its metadata, not its transcript.

WEBHOOK_PAYLOAD_RETENTION_DAYS (or its space's own `payload_retention_days`) after an event finished (processed,
recorded or ignored), its payload is erased; what stays is what the admin lists and the export shows (ids, type,
status, times, sizes, counts). The memories made from it stay until the user is forgotten. Failed and quarantined
events are kept whole: an operator still has to look at them. The worker applies this hourly (PERIODIC_JOBS);
`manage.py erase_old_payloads` on demand.
"""

import logging
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from calls.models import WebhookEvent
from memories.models import Space

logger = logging.getLogger(__name__)

BATCH = 500


def expired_payloads(days: int, now=None) -> QuerySet[WebhookEvent]:
    """Finished events older than `days` that still hold a payload (or a raw body)."""
    cutoff = (now or timezone.now()) - timedelta(days=days)
    finished_before = Q(processed_at__lt=cutoff) | Q(processed_at__isnull=True, received_at__lt=cutoff)
    holding = Q(payload__isnull=False) | Q(raw_body__isnull=False)
    return WebhookEvent.objects.filter(finished_before, holding, status__in=WebhookEvent.FINISHED)


def retention_rules(days: int | None = None) -> list[tuple[int, Q]]:
    """(days, the events they apply to): `days` for every event when given; else each space's own retention for
    its events, and WEBHOOK_PAYLOAD_RETENTION_DAYS for the rest (0: kept)."""
    if days is not None:
        return [(days, Q())]
    own = dict(Space.objects.filter(payload_retention_days__isnull=False).values_list("pk", "payload_retention_days"))
    rules = [(space_days, Q(space_id=space_id)) for space_id, space_days in own.items()]
    rules.append((settings.WEBHOOK_PAYLOAD_RETENTION_DAYS, Q(space__isnull=True) | ~Q(space_id__in=list(own))))
    return rules


def erase_old_payloads(
    days: int | None = None, dry_run: bool = False, progress: Callable[[int], None] | None = None
) -> int:
    """Erase the payloads retention has expired, in batches; returns how many events (would have) changed.
    `days` overrides every space's retention; None applies each space's (retention_rules)."""
    now = timezone.now()
    erased = 0
    for rule_days, events in retention_rules(days):
        if rule_days <= 0:
            continue
        expired = expired_payloads(rule_days, now).filter(events)
        if dry_run:
            erased += expired.count()
            continue
        while ids := list(expired.order_by("pk").values_list("pk", flat=True)[:BATCH]):
            erased += WebhookEvent.objects.filter(pk__in=ids).update(payload=None, raw_body=None, payload_erased_at=now)
            if progress:
                progress(erased)
    if erased and not dry_run:
        logger.info("old post-call payloads erased", extra={"events": erased})
    return erased
