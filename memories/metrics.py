"""Prometheus metrics of the memory engine, read from the database at scrape time (served by /metrics).

What an operator alerts on: heavy users' dedicated vector indexes that failed to build.
"""

from prometheus_client.registry import Collector

from core.metrics import rows_by_status
from memories.models import UserVectorIndex


class MemoriesCollector(Collector):
    def collect(self):
        yield rows_by_status(
            "memory_user_vector_indexes", "Heavy users' dedicated HNSW indexes, by state (PostgreSQL).", UserVectorIndex
        )


COLLECTORS = [MemoriesCollector]
