"""The embedded cache is an exact LRU; the Redis cache evicts least-recently-used keys under allkeys-lru."""

import time

import pytest
from django.core.cache import caches

from embeddings.cache import get_embedding_cache
from embeddings.generation import cache_key_for, generate_embedding
from embeddings.statistics import collect_statistics
from tests.conftest import redis_embedding_cache_config, reset_embedding_singletons


@pytest.fixture
def three_entry_lru(settings, tmp_path):
    caches_setting = {alias: dict(config) for alias, config in settings.CACHES.items()}
    caches_setting["embeddings"] = {
        "BACKEND": "embeddings.cache_backends.sqlite_lru.SQLiteLRUCache",
        "LOCATION": str(tmp_path / "three.sqlite3"),
        "TIMEOUT": None,
        "OPTIONS": {"MAX_ENTRIES": 3},
    }
    settings.CACHES = caches_setting
    reset_embedding_singletons()


def cached_texts(texts):
    keys = {cache_key_for(text): text for text in texts}
    return {keys[key] for key in get_embedding_cache().lookup(keys, count=False)}


ALL = ["user preferences", "CRM system", "billing info", "contact details"]


def test_exact_lru_scenario_evicts_the_least_recently_used(three_entry_lru):
    for text in ["user preferences", "CRM system", "billing info"]:
        generate_embedding(text)
    generate_embedding("user preferences")  # a hit refreshes its recency
    generate_embedding("contact details")
    assert cached_texts(ALL) == {"user preferences", "billing info", "contact details"}
    stats = collect_statistics()
    assert (stats.entries, stats.evictions, stats.hits, stats.misses) == (3, 1, 1, 4)
    assert stats.max_entries == 3


def test_without_the_hit_the_oldest_entry_goes(three_entry_lru):
    for text in ALL:
        generate_embedding(text)
    assert cached_texts(ALL) == {"CRM system", "billing info", "contact details"}


def test_ttl_expiry_on_the_local_cache(three_entry_lru, settings):
    backend = caches["embeddings"]
    backend.set("emb:v1:short", b"\x00" * 8, timeout=1)
    backend.set("emb:v1:forever", b"\x00" * 8, timeout=None)
    assert backend.get("emb:v1:short") == b"\x00" * 8
    time.sleep(1.1)
    assert backend.get("emb:v1:short") is None
    assert backend.get("emb:v1:forever") == b"\x00" * 8


def test_local_cache_stores_bytes_only(three_entry_lru):
    with pytest.raises(TypeError, match="bytes only"):
        caches["embeddings"].set("emb:v1:x", {"pickled": "never"})


@pytest.mark.redis
def test_ttl_on_redis(settings):
    backend = caches["embeddings"]
    backend.set("emb:v1:short", b"\x00" * 8, timeout=1)
    backend.set("emb:v1:forever", b"\x00" * 8, timeout=None)
    assert 0 < backend.ttl("emb:v1:short") <= 1
    assert backend.ttl("emb:v1:forever") is None
    time.sleep(1.2)
    assert backend.get("emb:v1:short") is None
    assert backend.get("emb:v1:forever") == b"\x00" * 8


@pytest.mark.redis
def test_default_ttl_is_applied_on_redis(settings):
    generate_embedding("ttl check")
    ttl = caches["embeddings"].ttl(cache_key_for("ttl check"))
    assert settings.EMBEDDING_CACHE_TTL - 5 < ttl <= settings.EMBEDDING_CACHE_TTL


@pytest.mark.redis
def test_redis_allkeys_lru_keeps_the_recently_read_entry(settings, private_redis_factory):
    """A real Redis with a small maxmemory: the entry we keep reading survives while older ones go.

    Redis' LRU clock ticks once a second, so keys touched within the same second look equally recent and the
    eviction among them is a draw (this test failed about one run in six before). The writes come in three
    waves a second apart, the hot entry read before each: when evictions start, every key but the hot one and
    the last wave is older than the hot entry.
    """
    import redis

    server = private_redis_factory(
        "--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru", "--maxmemory-samples", "10"
    )
    caches_setting = {alias: dict(config) for alias, config in settings.CACHES.items()}
    caches_setting["embeddings"] = redis_embedding_cache_config(server.url)
    settings.CACHES = caches_setting
    reset_embedding_singletons()
    generate_embedding("the hot entry")
    client = redis.Redis.from_url(server.url)
    free = int(client.config_get("maxmemory")["maxmemory"]) - client.info("memory")["used_memory"]
    entry_bytes = client.memory_usage(caches["embeddings"].make_key(cache_key_for("the hot entry")))
    capacity = free // entry_bytes  # entries that fit
    waves = [[f"{wave} entry {index}" for index in range(capacity * 45 // 100)] for wave in ("old", "middle", "new")]
    for number, wave in enumerate(waves):
        if number:
            time.sleep(1.1)
            generate_embedding("the hot entry")
        for text in wave:
            generate_embedding(text)
        if number == 0:
            assert client.info("stats")["evicted_keys"] == 0, "the first wave fits"
    assert client.info("stats")["evicted_keys"] > 0, "the last wave does not"
    assert cached_texts(["the hot entry"]) == {"the hot entry"}
    assert cached_texts(waves[2]) == set(waves[2]), "the newest entries stay"
    assert len(cached_texts(waves[0])) < len(waves[0]) // 2, "the oldest go first"
    stats = collect_statistics()
    assert stats.evictions > 0
    assert stats.evictions_scope.startswith("server-wide")
    assert stats.policy == "allkeys-lru"
