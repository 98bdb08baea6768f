"""Background work of the embedding service: periodic samples of the cache counters (run by core.worker)."""

from core.periodic import PeriodicJob
from embeddings.statistics import SAMPLE_EVERY, sample_cache_statistics

PERIODIC_JOBS = [
    PeriodicJob("sample embedding cache statistics", SAMPLE_EVERY.total_seconds(), sample_cache_statistics)
]
