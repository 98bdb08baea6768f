"""The production embedding cache: django-redis, with Redis evicting under `allkeys-lru` and `maxmemory`.

Lookups run one Lua script that does the MGET and adds hits and misses to a stats hash in the same round
trip, so counting costs no extra network call. The stats hash is read-modified on every lookup, which keeps
it the most recently used key in the database: LRU eviction reaches it last. Redis Cluster is not supported
(the script touches keys in several slots); a single node or a primary with replicas is.
"""

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django_redis.cache import RedisCache

from embeddings.cache_backends.base import EmbeddingCacheBackend
from embeddings.keys import KEY_NAMESPACE

COUNTED_MGET = """
local values = redis.call('MGET', unpack(KEYS, 2))
if ARGV[1] == '1' then
  local hits = 0
  for i = 1, #values do if values[i] then hits = hits + 1 end end
  if hits > 0 then redis.call('HINCRBY', KEYS[1], 'hits', hits) end
  if #values - hits > 0 then redis.call('HINCRBY', KEYS[1], 'misses', #values - hits) end
end
return values
"""
# Lua's unpack() has a stack limit of a few thousand values; bigger lookups are split.
MAX_KEYS_PER_SCRIPT = 4000
SCAN_COUNT = 5000
SAMPLE_FOR_SIZE = 20


class EmbeddingRedisCache(RedisCache, EmbeddingCacheBackend):
    def __init__(self, server: str, params: dict[str, Any]):
        super().__init__(server, params)
        self._scripts: dict[int, Any] = {}

    @property
    def stats_key(self) -> str:
        return f"{self.key_prefix}:embedding-cache:stats"

    @property
    def entry_pattern(self) -> str:
        # Every version of every embedding key under this prefix, and nothing else.
        return f"{self.key_prefix}:*:{KEY_NAMESPACE}:*"

    def redis(self):
        return self.client.get_client(write=True)

    def _counted_mget(self, client):
        script = self._scripts.get(id(client))
        if script is None:
            script = self._scripts[id(client)] = client.register_script(COUNTED_MGET)
        return script

    def get_many_counted(self, keys: Iterable[str], count: bool = True) -> dict[str, bytes]:
        keys = list(dict.fromkeys(keys))
        client = self.redis()
        script = self._counted_mget(client)
        found: dict[str, bytes] = {}
        for start in range(0, len(keys), MAX_KEYS_PER_SCRIPT):
            chunk = keys[start : start + MAX_KEYS_PER_SCRIPT]
            made = [str(self.client.make_key(key)) for key in chunk]
            values = script(keys=[self.stats_key, *made], args=["1" if count else "0"], client=client)
            found.update({key: bytes(value) for key, value in zip(chunk, values, strict=True) if value is not None})
        return found

    def incr_counters(self, counts: Mapping[str, int | float]) -> None:
        pipeline = self.redis().pipeline(transaction=False)
        for name, amount in counts.items():
            if isinstance(amount, float) and not amount.is_integer():
                pipeline.hincrbyfloat(self.stats_key, name, amount)
            elif amount:
                pipeline.hincrby(self.stats_key, name, int(amount))
        pipeline.execute()

    def read_counters(self) -> dict[str, float]:
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
        client = self.redis()
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


def _safe_location(server: str | list[str]) -> str:
    """The Redis URL without its password."""
    url = server[0] if isinstance(server, list) else server
    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)
