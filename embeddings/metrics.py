"""Prometheus metrics of the embedding cache, read from the shared statistics at scrape time (served by /metrics).

The counters live beside the cache entries (Redis hash or the SQLite file), not in process memory, so every
gunicorn worker serves the same, complete figures: no multiprocess directory to manage.
"""

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from embeddings.statistics import collect_statistics


class EmbeddingCacheCollector(Collector):
    def collect(self):
        stats = collect_statistics()
        yield GaugeMetricFamily("embedding_cache_up", "1 when the embedding cache is reachable.", int(stats.available))
        if not stats.available:
            yield CounterMetricFamily("embedding_cache_errors", "Cache errors (this process).", stats.cache_errors)
            return
        yield GaugeMetricFamily("embedding_cache_size", "Embedding entries in the cache.", stats.entries or 0)
        yield GaugeMetricFamily("embedding_cache_bytes", "Bytes of embedding values in the cache.", stats.bytes or 0)
        yield GaugeMetricFamily(
            "embedding_cache_hit_rate", "Hits / (hits + misses) since the counters began.", stats.hit_rate or 0.0
        )
        yield CounterMetricFamily("embedding_cache_hits", "Embedding cache hits.", stats.hits)
        yield CounterMetricFamily("embedding_cache_misses", "Embedding cache misses.", stats.misses)
        evictions = CounterMetricFamily(
            "embedding_cache_evictions", "Evicted entries (scope label: exact, or Redis server-wide).", labels=["scope"]
        )
        evictions.add_metric([stats.evictions_scope], stats.evictions or 0)
        yield evictions
        yield CounterMetricFamily("embedding_cache_errors", "Embedding cache errors (failed open).", stats.cache_errors)
        yield CounterMetricFamily(
            "embedding_api_calls", "Requests made to the embedding provider.", stats.provider_calls
        )
        yield CounterMetricFamily(
            "embedding_api_errors", "Provider requests that failed after retries.", stats.provider_errors
        )
        yield HistogramMetricFamily(
            "embedding_generation_latency_seconds",
            "Latency of embedding provider requests.",
            buckets=stats.latency_buckets,
            sum_value=stats.latency_sum_seconds,
        )


COLLECTORS = [EmbeddingCacheCollector]
