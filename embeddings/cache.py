"""The embedding cache: keys and values as docs/embedding-cache.md describes, behind the dedicated "embeddings" cache
alias.

Every read and write goes through the failure policy: a broken cache turns into misses and no-ops, never
into a failed request.
"""

from collections.abc import Iterable, Mapping
from functools import cache as memoize
from typing import Any

from django.conf import settings
from django.core.cache import caches

from embeddings.cache_backends.base import EmbeddingCacheBackend
from embeddings.failure_policy import CacheFailurePolicy, fail_open

CACHE_ALIAS = "embeddings"


class EmbeddingCache:
    def __init__(self, alias: str = CACHE_ALIAS, failure_policy: CacheFailurePolicy | None = None):
        self.alias = alias
        self.failure_policy = failure_policy or CacheFailurePolicy(
            retry_after=settings.EMBEDDING_CACHE_RETRY_AFTER, log_every=settings.EMBEDDING_CACHE_ERROR_LOG_EVERY
        )

    @property
    def backend(self) -> EmbeddingCacheBackend:
        backend = caches[self.alias]
        if not isinstance(backend, EmbeddingCacheBackend):
            raise TypeError(
                f"cache alias {self.alias!r} must use an embedding cache backend "
                "(embeddings.cache_backends.redis.EmbeddingRedisCache or ...sqlite_lru.SQLiteLRUCache)"
            )
        return backend

    @fail_open(default=dict)
    def lookup(self, keys: Iterable[str], count: bool = True) -> dict[str, bytes]:
        """Cached values for `keys` in one round trip; hits and misses are counted unless `count` is False."""
        return self.backend.get_many_counted(list(keys), count=count)

    @fail_open(default=lambda: None)
    def lookup_riding(self, keys: Iterable[str], riders: Iterable[str]) -> dict[str, bytes] | None:
        """`lookup` (counted), with the values of the `riders` keys read in the same round trip and not counted;
        None when the cache could not be read (an empty dict means nothing was found)."""
        return self.backend.get_many_counted(list(keys), count=True, uncounted=list(riders))

    @fail_open(default=lambda: None)
    def store(self, values: Mapping[str, bytes]) -> None:
        if values:
            caches[self.alias].set_many(dict(values))

    def add_counters(self, counts: Mapping[str, int | float]) -> None:
        """Add to the shared counters, including cache errors this process could not report earlier."""
        errors = self.failure_policy.take_unreported()
        merged = dict(counts)
        if errors:
            merged["cache_errors"] = merged.get("cache_errors", 0) + errors
        if not self._add_counters(merged) and errors:
            # The cache is still down: keep the errors for the next attempt.
            self.failure_policy.restore_unreported(errors)

    @fail_open(default=lambda: False)
    def _add_counters(self, counts: Mapping[str, int | float]) -> bool:
        self.backend.incr_counters({name: amount for name, amount in counts.items() if amount})
        return True

    def counters(self) -> dict[str, float]:
        """Shared counters; raises when the cache is unreachable (callers report that, not zeros)."""
        return self.backend.read_counters()

    def info(self) -> dict[str, Any]:
        return self.backend.cache_info()

    def forget(self, keys: Iterable[str]) -> int:
        """Remove these entries (a forgotten user's texts); returns how many existed. Raises when the cache is
        unreachable: the caller reports that rather than pretend the entries are gone."""
        keys = list(keys)
        if not keys:
            return 0
        return caches[self.alias].delete_many(keys) or 0

    def clear(self) -> int:
        """Remove every embedding entry and nothing else; raises when the cache is unreachable."""
        return self.backend.clear_embeddings()


def embedding_backend_name(alias: str = CACHE_ALIAS) -> str:
    """The class name of the configured backend ("EmbeddingRedisCache", "SQLiteLRUCache"), from settings alone."""
    return settings.CACHES.get(alias, {}).get("BACKEND", "").rsplit(".", 1)[-1]


@memoize
def get_embedding_cache() -> EmbeddingCache:
    """The process-wide EmbeddingCache (one failure policy per process)."""
    return EmbeddingCache()
