"""Daily counts for the admin index's charts: apps count what happened per UTC day, the worker stores it."""

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from core.charts import Point
from core.models import DailyCount

DAYS_SHOWN = 14
COUNT_EVERY_SECONDS = 900  # a count of today's rows per app every 15 minutes
DAYS_KEPT = 400


def record_daily_counts(name: str, count_on: Callable[[datetime, datetime], int], days: int = 2) -> None:
    """Store `count_on(start, end)` for today and the days before (`days` in all): yesterday is recounted once
    more after midnight, so late rows are not lost. Idempotent: the rows are replaced."""
    today = timezone.now().astimezone(UTC).date()
    for offset in range(days):
        day = today - timedelta(days=offset)
        start = datetime.combine(day, time.min, tzinfo=UTC)
        DailyCount.objects.update_or_create(
            name=name,
            day=day,
            defaults={"value": count_on(start, start + timedelta(days=1)), "counted_at": timezone.now()},
        )
    DailyCount.objects.filter(name=name, day__lt=today - timedelta(days=DAYS_KEPT)).delete()


def counted_between(queryset: QuerySet, field: str) -> Callable[[datetime, datetime], int]:
    return lambda start, end: queryset.filter(**{f"{field}__gte": start, f"{field}__lt": end}).count()


def daily_points(name: str, days: int = DAYS_SHOWN) -> list[Point]:
    """The last `days` days of `name`, oldest first; a day the worker never counted is a gap."""
    today = timezone.now().astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    stored = dict(DailyCount.objects.filter(name=name, day__gte=first).values_list("day", "value"))
    return [
        Point(label=f"{day:%b} {day.day}", value=stored.get(day))
        for day in (first + timedelta(days=offset) for offset in range(days))
    ]
