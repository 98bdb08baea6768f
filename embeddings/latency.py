"""Provider latency as a histogram kept in the shared counters (Prometheus-style `le` buckets, seconds)."""

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def bucket_counter_name(upper_bound: float) -> str:
    return f"latency_le_{upper_bound:g}"


INF_COUNTER = "latency_le_inf"


def latency_counters(seconds: float) -> dict[str, float]:
    """The counter increments for one observation: its own bucket, the sum and the count."""
    bucket = next((bucket_counter_name(bound) for bound in BUCKETS if seconds <= bound), INF_COUNTER)
    return {bucket: 1, "latency_sum_seconds": seconds, "latency_count": 1}


def cumulative_buckets(counters: dict[str, float]) -> list[tuple[str, float]]:
    """[(le, cumulative count)] from the stored per-bucket counts, ending with +Inf."""
    running = 0.0
    buckets: list[tuple[str, float]] = []
    for bound in BUCKETS:
        running += counters.get(bucket_counter_name(bound), 0)
        buckets.append((f"{bound:g}", running))
    running += counters.get(INF_COUNTER, 0)
    buckets.append(("+Inf", running))
    return buckets
