"""The production embedding cache: django-redis, with Redis evicting under `allkeys-lru` and `maxmemory`.

A lookup is one MGET. Hits and misses are counted in the process and added to a stats hash in Redis with
HINCRBY, riding in the pipeline of a lookup (at most once a second) or of a counter write: counting never
costs a round trip of its own. The hash is written at least once a second while there is traffic, which
keeps it among the most recently used keys: LRU eviction reaches it last. (A Lua script doing MGET +
HINCRBY in one call was measured first: 1.9x a bare GET per hit, against 1.4x for this; docs/benchmarks.md.)
"""

import atexit
import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django_redis.cache import RedisCache
from redis import ConnectionPool
from redis.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError as RedisConnectionError

from embeddings.cache_backends.base import EmbeddingCacheBackend
from embeddings.keys import KEY_NAMESPACE

# Keys per MGET; bigger lookups are split.
MAX_KEYS_PER_MGET = 4000
# Hits and misses are counted in the process and added to the shared stats hash at most this often, in the
# pipeline of a lookup or a write that happens anyway: no extra round trip, and the figures lag by at most
# this long (a process' own reads flush first, and exit flushes what is left).
COUNTER_FLUSH_SECONDS = 1.0
SCAN_COUNT = 5000
SAMPLE_FOR_SIZE = 20
PLAIN_CONNECTIONS = (Connection, SSLConnection, UnixDomainSocketConnection)
logger = logging.getLogger(__name__)


class EmbeddingRedisCache(RedisCache, EmbeddingCacheBackend):
    def __init__(self, server: str, params: dict[str, Any]):
        options = dict(params.get("OPTIONS", {}))
        # A database that holds nothing but this cache: entries are counted with DBSIZE (O(1)) instead of a
        # SCAN over every key (about 250 ms at 100k keys).
        self.dedicated_db = bool(options.pop("DEDICATED_DB", False))
        super().__init__(server, {**params, "OPTIONS": options})
        # Django makes one backend object per thread; the pending counts are shared by the whole process.
        self._counts = _pending_counts_for(f"{server}|{self.stats_key}")
        _live_caches.add(self)

    @property
    def stats_key(self) -> str:
        return f"{self.key_prefix}:embedding-cache:stats"

    @property
    def entry_pattern(self) -> str:
        # Every version of every embedding key under this prefix, and nothing else.
        return f"{self.key_prefix}:*:{KEY_NAMESPACE}:*"

    def redis(self):
        return self.client.get_client(write=True)

    def _take_pending(self, force: bool) -> dict[str, int]:
        """The counts not yet in Redis, if a flush is due (or forced); they are cleared here."""
        return self._counts.take(force)

    def _restore_pending(self, counts: Mapping[str, int | float]) -> None:
        self._counts.add(int(counts.get("hits", 0)), int(counts.get("misses", 0)))

    def _add_increments(self, pipeline, counts: Mapping[str, int | float]) -> None:
        for name, amount in counts.items():
            if isinstance(amount, float) and not amount.is_integer():
                pipeline.hincrbyfloat(self.stats_key, name, amount)
            elif amount:
                pipeline.hincrby(self.stats_key, name, int(amount))

    def get_many_counted(
        self, keys: Iterable[str], count: bool = True, uncounted: Iterable[str] = ()
    ) -> dict[str, bytes]:
        keys = list(dict.fromkeys(keys))
        riders = [key for key in dict.fromkeys(uncounted) if key not in keys]
        found: dict[str, bytes] = {}
        for start in range(0, max(len(keys), 1 if riders else 0), MAX_KEYS_PER_MGET):
            chunk = keys[start : start + MAX_KEYS_PER_MGET]
            ride = riders if start == 0 else []  # in the first MGET
            made = [self.client.make_key(key) for key in chunk + ride]
            flush = self._take_pending(force=False) if count else {}
            if flush:
                pipeline = self.redis().pipeline(transaction=False)
                pipeline.mget(made)
                self._add_increments(pipeline, flush)
                try:
                    values = pipeline.execute()[0]
                except Exception:
                    self._restore_pending(flush)
                    raise
            else:
                values = self._mget(made)
            hits = 0
            for key, value in zip(chunk, values[: len(chunk)], strict=True):
                if value is not None:
                    found[key] = bytes(value)
                    hits += 1
            for key, value in zip(ride, values[len(chunk) :], strict=True):
                if value is not None:
                    found[key] = bytes(value)
            if count:
                self._counts.add(hits, len(chunk) - hits)
        return found

    def _mget(self, made: list[str]) -> list[bytes | None]:
        """MGET on this thread's own connection, or through the client (its retries, its errors).

        The client's way costs as much CPU as the round trip itself (docs/benchmarks.md): a connection from the
        pool, checked for stray data by a poll, the command wrapped in retries and timed for redis-py's metrics.
        This connection serves only whole MGETs on one thread. A dropped connection (the server restarted, an
        idle timeout, CLIENT KILL) is replaced and the lookup repeated through the client; a timeout is raised as
        the client's would be (waiting twice on a slow server would double a call's wait). Pools this does not
        know (Sentinel, client-side caching) always take the client's way.
        """
        client = self.redis()
        pool = client.connection_pool
        lookup = _lookup_connections
        if lookup.pool is not pool or lookup.pid != os.getpid() or lookup.connection is None:
            plain = type(pool) is ConnectionPool and pool.connection_class in PLAIN_CONNECTIONS
            if not plain or getattr(pool, "cache", None):
                return client.mget(made)
            if lookup.connection is not None:
                lookup.connection.disconnect()  # another pool's (settings changed) or the parent process'
            lookup.connection = pool.connection_class(**pool.connection_kwargs)
            lookup.pool, lookup.pid = pool, os.getpid()
        connection = lookup.connection
        try:
            connection.send_command("MGET", *made)
            return connection.read_response()
        except BaseException as error:
            connection.disconnect()  # never reused with a reply still on its way
            lookup.connection = None
            if not isinstance(error, RedisConnectionError):  # redis-py's TimeoutError is not one
                raise
            logger.info("embedding cache lookup connection dropped; repeating through the client")
            return client.mget(made)

    def incr_counters(self, counts: Mapping[str, int | float]) -> None:
        pending = self._take_pending(force=True)
        merged = dict(counts)
        for name, amount in pending.items():
            merged[name] = merged.get(name, 0) + amount
        pipeline = self.redis().pipeline(transaction=False)
        self._add_increments(pipeline, merged)
        try:
            pipeline.execute()
        except Exception:
            self._restore_pending(pending)
            raise

    def flush_counters(self) -> None:
        """Add this process' pending hits and misses to the shared hash now."""
        if self._counts.any():
            self.incr_counters({})

    def read_counters(self) -> dict[str, float]:
        self.flush_counters()  # what this process counted is part of the answer
        raw = self.redis().hgetall(self.stats_key)
        return {name.decode(): float(value) for name, value in raw.items()}

    def clear_embeddings(self) -> int:
        client = self.redis()
        removed = 0
        batch: list[bytes] = []
        for key in client.scan_iter(match=self.entry_pattern, count=SCAN_COUNT):
            batch.append(key)
            if len(batch) >= 1000:
                removed += client.unlink(*batch)
                batch = []
        if batch:
            removed += client.unlink(*batch)
        return removed

    def count_entries(self) -> tuple[int, list[bytes]]:
        """(entries, a sample of entry keys); O(1) with a dedicated database, a full SCAN otherwise."""
        client = self.redis()
        if self.dedicated_db:
            pipeline = client.pipeline(transaction=False)
            pipeline.dbsize()
            pipeline.exists(self.stats_key)
            for _ in range(SAMPLE_FOR_SIZE):
                pipeline.randomkey()
            size, has_stats, *sample = pipeline.execute()
            prefix = self.entry_pattern.split("*", 1)[0].encode()
            keys = [key for key in sample if key and key.startswith(prefix) and b":emb:" in key]
            return size - has_stats, keys
        entries = 0
        sample: list[bytes] = []
        for key in client.scan_iter(match=self.entry_pattern, count=SCAN_COUNT):
            entries += 1
            if len(sample) < SAMPLE_FOR_SIZE:
                sample.append(key)
        return entries, sample

    def cache_info(self) -> dict[str, Any]:
        client = self.redis()
        entries, sample = self.count_entries()
        pipeline = client.pipeline(transaction=False)
        for key in sample:
            pipeline.strlen(key)
        pipeline.info("memory")
        pipeline.info("stats")
        *lengths, memory, stats = pipeline.execute()
        average = sum(lengths) / len(lengths) if lengths else 0
        return {
            "backend": "redis",
            "location": _safe_location(self._server),
            "entries": entries,
            "bytes": round(average * entries),
            "bytes_note": "values only, estimated from a sample of entries",
            "max_entries": None,
            "maxmemory": int(memory.get("maxmemory", 0)),
            "policy": memory.get("maxmemory_policy", "unknown"),
            "evictions": int(stats.get("evicted_keys", 0)),
            "evictions_scope": "server-wide (Redis evicted_keys)",
            "server": {
                "scope": "server-wide",
                "used_memory": int(memory.get("used_memory", 0)),
                "used_memory_human": memory.get("used_memory_human", ""),
                "keyspace_hits": int(stats.get("keyspace_hits", 0)),
                "keyspace_misses": int(stats.get("keyspace_misses", 0)),
            },
        }


class _PendingCounts:
    """Hits and misses of one process not yet added to the shared hash."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.hits = self.misses = 0
        self.last_flush = time.monotonic()

    def add(self, hits: int, misses: int) -> None:
        with self.lock:
            self.hits += hits
            self.misses += misses

    def any(self) -> bool:
        return bool(self.hits or self.misses)

    def take(self, force: bool) -> dict[str, int]:
        with self.lock:
            if not force and time.monotonic() - self.last_flush < COUNTER_FLUSH_SECONDS:
                return {}
            taken = {name: amount for name, amount in (("hits", self.hits), ("misses", self.misses)) if amount}
            self.hits = self.misses = 0
            self.last_flush = time.monotonic()
            return taken


class _LookupConnections(threading.local):
    """Each thread's own connection for lookups (EmbeddingRedisCache._mget), and the pool and process it is for."""

    connection = None
    pool = None
    pid = None


_lookup_connections = _LookupConnections()
_pending_by_cache: dict[str, _PendingCounts] = {}
_pending_lock = threading.Lock()


def discard_pending_counts() -> None:
    """Forget the counts not yet flushed (tests reset the shared counters between cases)."""
    with _pending_lock:
        for pending in _pending_by_cache.values():
            pending.take(force=True)


def _pending_counts_for(name: str) -> _PendingCounts:
    with _pending_lock:
        return _pending_by_cache.setdefault(name, _PendingCounts())


_live_caches: "weakref.WeakSet[EmbeddingRedisCache]" = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for cache in list(_live_caches):
        with contextlib.suppress(Exception):  # Redis gone at shutdown: nothing left to do
            cache.flush_counters()


def _safe_location(server: str | list[str]) -> str:
    """The Redis URL without its password."""
    url = server[0] if isinstance(server, list) else server
    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)
