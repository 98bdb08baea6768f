"""The interface the embedding cache needs beyond Django's cache API."""

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any


class EmbeddingCacheBackend(ABC):
    @abstractmethod
    def get_many_counted(
        self, keys: Iterable[str], count: bool = True, uncounted: Iterable[str] = ()
    ) -> dict[str, bytes]:
        """Values of the keys present, in one round trip; hits refresh recency.

        With `count`, hits and misses of `keys` are added to the shared counters in that same round trip. The
        `uncounted` keys are read in the same round trip and never counted (values that ride along with an
        embedding's lookup: memories.caller_cache's tokens).
        """

    @abstractmethod
    def incr_counters(self, counts: Mapping[str, int | float]) -> None:
        """Add to shared counters (kept beside the entries, so every process sees the same figures)."""

    @abstractmethod
    def read_counters(self) -> dict[str, float]:
        """All shared counters."""

    @abstractmethod
    def clear_embeddings(self) -> int:
        """Delete every embedding entry (nothing else) and return how many were deleted."""

    @abstractmethod
    def cache_info(self) -> dict[str, Any]:
        """Entries, bytes, limit, policy and evictions, with `scope` saying what each figure covers."""
