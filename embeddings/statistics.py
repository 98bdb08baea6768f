"""Embedding cache statistics: one function that the admin page, the JSON view, Prometheus and the
`embedding_cache_stats` command all read."""

import itertools
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from django.utils import timezone

from core.charts import Point
from embeddings.cache import embedding_backend_name, get_embedding_cache
from embeddings.latency import cumulative_buckets
from embeddings.models import CacheStatsSample
from embeddings.providers import get_provider

HIT_RATE_ALERT_BELOW = 0.20
EVICTIONS_PER_MINUTE_ALERT_ABOVE = 100
SAMPLE_EVERY = timedelta(seconds=60)
SAMPLES_KEPT = timedelta(days=8)  # the admin charts the last 7 days


@dataclass
class CacheStatistics:
    available: bool
    backend: str
    provider: dict[str, Any]
    hits: int = 0
    misses: int = 0
    hit_rate: float | None = None
    provider_calls: int = 0
    provider_texts: int = 0
    provider_errors: int = 0
    cache_errors: int = 0
    latency_count: int = 0
    latency_sum_seconds: float = 0.0
    latency_buckets: list[tuple[str, float]] = field(default_factory=list)
    entries: int | None = None
    bytes: int | None = None
    max_entries: int | None = None
    maxmemory: int | None = None
    policy: str = ""
    evictions: int | None = None
    evictions_scope: str = ""
    expired: int = 0
    server: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["latency_buckets"] = dict(self.latency_buckets)
        return data


def collect_statistics() -> CacheStatistics:
    """Current figures of the embedding cache, shared by every process; `available` is False (with the
    error) when the cache cannot be reached, so a dead Redis never reads as an empty cache."""
    cache = get_embedding_cache()
    provider = get_provider().describe()
    unreported = cache.failure_policy.unreported_errors
    try:
        counters = cache.counters()
        info = cache.info()
    except Exception as error:
        return CacheStatistics(
            available=False,
            backend=embedding_backend_name(cache.alias),
            provider=provider,
            cache_errors=unreported,
            error=f"{type(error).__name__}: {error}",
        )
    hits, misses = int(counters.get("hits", 0)), int(counters.get("misses", 0))
    return CacheStatistics(
        available=True,
        backend=info["backend"],
        provider=provider,
        hits=hits,
        misses=misses,
        hit_rate=round(hits / (hits + misses), 4) if hits + misses else None,
        provider_calls=int(counters.get("provider_calls", 0)),
        provider_texts=int(counters.get("provider_texts", 0)),
        provider_errors=int(counters.get("provider_errors", 0)),
        cache_errors=int(counters.get("cache_errors", 0)) + unreported,
        latency_count=int(counters.get("latency_count", 0)),
        latency_sum_seconds=round(counters.get("latency_sum_seconds", 0.0), 6),
        latency_buckets=cumulative_buckets(counters),
        entries=info.get("entries"),
        bytes=info.get("bytes"),
        max_entries=info.get("max_entries"),
        maxmemory=info.get("maxmemory"),
        policy=info.get("policy", ""),
        evictions=info.get("evictions"),
        evictions_scope=info.get("evictions_scope", ""),
        expired=int(counters.get("expired", 0)),
        server=info.get("server", {}),
    )


@dataclass
class CacheAlerts:
    window_minutes: float | None  # the interval the rates cover; None before two readings exist
    hit_rate: float | None  # over the window when there is one, else since the counters began
    evictions_per_minute: float | None
    hit_rate_low: bool
    evictions_high: bool


def sample_cache_statistics() -> CacheStatsSample | None:
    """Store a reading of the cumulative counters, at most once a minute whichever worker asks, and keep 8 days.

    The task worker calls this every minute (embeddings.tasks), so the alert rates exist whether or not anyone
    looks at the admin. None when the cache is down or the last reading is less than a minute old.
    """
    stats = collect_statistics()
    if not stats.available:
        return None
    now = timezone.now()
    latest = CacheStatsSample.objects.first()
    if latest is not None and now - latest.taken_at < SAMPLE_EVERY:
        return None
    sample = CacheStatsSample.objects.create(
        hits=stats.hits, misses=stats.misses, evictions=stats.evictions or 0, provider_calls=stats.provider_calls
    )
    CacheStatsSample.objects.filter(taken_at__lt=now - SAMPLES_KEPT).delete()
    return sample


def cache_alerts(stats: CacheStatistics) -> CacheAlerts:
    """The two alert states, from this reading and the last stored sample between a minute and an hour old."""
    now = timezone.now()
    reference = (
        CacheStatsSample.objects.filter(taken_at__lte=now - SAMPLE_EVERY, taken_at__gte=now - timedelta(hours=1))
        .order_by("-taken_at")
        .first()
    )
    window = rate = hit_rate = None
    if reference is not None and stats.available:
        window = (now - reference.taken_at).total_seconds() / 60
        rate = max(0, (stats.evictions or 0) - reference.evictions) / window
        lookups = (stats.hits - reference.hits) + (stats.misses - reference.misses)
        hit_rate = (stats.hits - reference.hits) / lookups if lookups > 0 else None
    if hit_rate is None:
        hit_rate = stats.hit_rate
    return CacheAlerts(
        window_minutes=round(window, 1) if window else None,
        hit_rate=round(hit_rate, 4) if hit_rate is not None else None,
        evictions_per_minute=round(rate, 1) if rate is not None else None,
        hit_rate_low=hit_rate is not None and hit_rate < HIT_RATE_ALERT_BELOW,
        evictions_high=rate is not None and rate > EVICTIONS_PER_MINUTE_ALERT_ABOVE,
    )


@dataclass
class CacheHistory:
    """The cache over a window, per bucket (oldest first), from the worker's samples: None where no sample."""

    hit_rate: list[Point]
    provider_calls: list[Point]
    evictions: list[Point]


def cache_history(window: timedelta, buckets: int, now=None) -> CacheHistory:
    """Hit rate, provider calls and evictions per bucket of `window`, from the differences between consecutive
    samples (a counter that went down was reset, by a clear or a Redis restart: its new value is the difference).
    """
    now = now or timezone.now()
    start = now - window
    size = window / buckets
    rows = list(
        CacheStatsSample.objects.filter(taken_at__gte=start - SAMPLE_EVERY * 2, taken_at__lte=now)
        .order_by("taken_at")
        .values_list("taken_at", "hits", "misses", "provider_calls", "evictions")
    )
    sums: list[list[int] | None] = [None] * buckets
    for previous, current in itertools.pairwise(rows):
        if current[0] < start:
            continue
        index = min(buckets - 1, int((current[0] - start) / size))
        deltas = [
            now_value - before if now_value >= before else now_value
            for before, now_value in zip(previous[1:], current[1:], strict=True)
        ]
        sums[index] = [a + b for a, b in zip(sums[index] or [0, 0, 0, 0], deltas, strict=True)]
    labels = [start + size * (index + 1) for index in range(buckets)]
    label = "%b %d %H:%M" if window <= timedelta(days=1) else "%b %d %H:00"
    hit_rate, calls, evictions = [], [], []
    for moment, bucket in zip(labels, sums, strict=True):
        text = moment.strftime(label)
        if bucket is None:
            hit_rate.append(Point(text, None))
            calls.append(Point(text, None))
            evictions.append(Point(text, None))
            continue
        hits, misses, provider_calls, evicted = bucket
        hit_rate.append(Point(text, hits / (hits + misses) if hits + misses else None))
        calls.append(Point(text, provider_calls))
        evictions.append(Point(text, evicted))
    return CacheHistory(hit_rate=hit_rate, provider_calls=calls, evictions=evictions)
