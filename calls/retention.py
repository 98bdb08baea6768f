"""Retention: a finished post-call event keeps its metadata, not its transcript.

WEBHOOK_PAYLOAD_RETENTION_DAYS after an event finished (processed, recorded or ignored), its payload is erased;
what stays is what the admin lists and the export shows (ids, type, status, times, sizes, counts). The memories
made from it stay until the user is forgotten. Failed and quarantined events are kept whole: an operator still
has to look at them. The worker applies this hourly (PERIODIC_JOBS); `manage.py erase_old_payloads` on demand.
"""

import logging
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from calls.models import WebhookEvent

logger = logging.getLogger(__name__)

BATCH = 500


def expired_payloads(days: int, now=None) -> QuerySet[WebhookEvent]:
    """Finished events older than `days` that still hold a payload (or a raw body)."""
    cutoff = (now or timezone.now()) - timedelta(days=days)
    finished_before = Q(processed_at__lt=cutoff) | Q(processed_at__isnull=True, received_at__lt=cutoff)
    holding = Q(payload__isnull=False) | Q(raw_body__isnull=False)
    return WebhookEvent.objects.filter(finished_before, holding, status__in=WebhookEvent.FINISHED)


def erase_old_payloads(
    days: int | None = None, dry_run: bool = False, progress: Callable[[int], None] | None = None
) -> int:
    """Erase the payloads retention has expired, in batches; returns how many events (would have) changed."""
    days = settings.WEBHOOK_PAYLOAD_RETENTION_DAYS if days is None else days
    if days <= 0:
        return 0
    now = timezone.now()
    if dry_run:
        return expired_payloads(days, now).count()
    erased = 0
    while ids := list(expired_payloads(days, now).order_by("pk").values_list("pk", flat=True)[:BATCH]):
        erased += WebhookEvent.objects.filter(pk__in=ids).update(payload=None, raw_body=None, payload_erased_at=now)
        if progress:
            progress(erased)
    if erased:
        logger.info("old post-call payloads erased", extra={"events": erased, "retention_days": days})
    return erased
