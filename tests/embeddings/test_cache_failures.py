"""A broken cache never breaks embeddings: it fails open, counts the errors and logs them sparingly."""

import logging
import threading

import numpy as np
import pytest
import redis
from django.core.cache import caches

from embeddings.cache import get_embedding_cache
from embeddings.cache_backends.redis import _lookup_connections
from embeddings.generation import generate_embedding
from embeddings.providers.hashing import LocalHashingProvider
from embeddings.statistics import collect_statistics
from tests.conftest import free_port, redis_embedding_cache_config, reset_embedding_singletons


def point_embedding_cache_at(settings, url: str, **options) -> None:
    caches_setting = {alias: dict(config) for alias, config in settings.CACHES.items()}
    caches_setting["embeddings"] = redis_embedding_cache_config(url, **options)
    settings.CACHES = caches_setting
    reset_embedding_singletons()


def expected(text: str) -> np.ndarray:
    return LocalHashingProvider(dimensions=1536).vector(text)


@pytest.mark.redis
def test_dead_port_still_serves_embeddings_and_counts_errors(settings, caplog):
    point_embedding_cache_at(settings, f"redis://127.0.0.1:{free_port()}/0")
    settings.EMBEDDING_CACHE_RETRY_AFTER = 0  # try the cache on every call: every call must still succeed
    with caplog.at_level(logging.WARNING, logger="embeddings.cache"):
        for index in range(5):
            assert np.allclose(generate_embedding(f"text {index}"), expected(f"text {index}"))
    policy = get_embedding_cache().failure_policy
    assert policy.errors_total >= 5
    warnings = [record for record in caplog.records if record.name == "embeddings.cache"]
    assert len(warnings) == 1, "errors are logged once per interval, not once per request"
    stats = collect_statistics()
    assert not stats.available
    assert stats.cache_errors >= 5


@pytest.mark.redis
def test_redis_stopped_mid_way_then_back(settings, private_redis_factory):
    server = private_redis_factory()
    point_embedding_cache_at(settings, server.url)
    settings.EMBEDDING_CACHE_RETRY_AFTER = 0
    generate_embedding("before the outage")
    assert collect_statistics().entries == 1
    server.stop()
    assert np.allclose(generate_embedding("during the outage"), expected("during the outage"))
    assert np.allclose(generate_embedding("before the outage"), expected("before the outage"))
    assert get_embedding_cache().failure_policy.unreported_errors > 0
    restarted = private_redis_factory()
    point_embedding_cache_at(settings, restarted.url)
    get_embedding_cache().failure_policy.unreported_errors = 3  # what the outage left behind
    generate_embedding("after the outage")
    stats = collect_statistics()
    assert stats.available
    assert stats.cache_errors == 3, "errors counted during the outage reach the shared counters afterwards"


@pytest.mark.redis
def test_circuit_skips_the_cache_after_an_error(settings):
    point_embedding_cache_at(settings, f"redis://127.0.0.1:{free_port()}/0")
    settings.EMBEDDING_CACHE_RETRY_AFTER = 60
    reset_embedding_singletons()
    generate_embedding("first")
    policy = get_embedding_cache().failure_policy
    assert policy.is_open
    errors = policy.errors_total
    generate_embedding("second")
    assert policy.errors_total == errors, "no new connection attempt while the circuit is open"


@pytest.mark.redis
def test_garbage_in_redis_is_never_unpickled_and_counts_as_a_miss(settings):
    import pickle

    from embeddings.generation import cache_key_for

    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('pickle was executed')",))

    key = caches["embeddings"].client.make_key(cache_key_for("poisoned"))
    caches["embeddings"].redis().set(key, pickle.dumps(Boom()))
    assert np.allclose(generate_embedding("poisoned"), expected("poisoned"))


def test_corrupt_local_entry_is_replaced(settings):
    from embeddings.generation import cache_key_for

    caches["embeddings"].set(cache_key_for("corrupt"), b"\x01\x02")
    assert np.allclose(generate_embedding("corrupt"), expected("corrupt"))
    assert len(caches["embeddings"].get(cache_key_for("corrupt"))) == 6144


def test_unwritable_local_cache_fails_open(settings, tmp_path):
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the cache's folder should be")
    caches_setting = {alias: dict(config) for alias, config in settings.CACHES.items()}
    caches_setting["embeddings"] = {
        "BACKEND": "embeddings.cache_backends.sqlite_lru.SQLiteLRUCache",
        "LOCATION": str(blocked / "cache.sqlite3"),
    }
    settings.CACHES = caches_setting
    reset_embedding_singletons()
    assert np.allclose(generate_embedding("still served"), expected("still served"))
    assert get_embedding_cache().failure_policy.errors_total >= 1


@pytest.mark.redis
def test_lookups_survive_their_connection_being_killed(settings, private_redis_factory):
    """Lookups use a connection of their own per thread (EmbeddingRedisCache._mget): when the server drops it
    (an idle timeout, CLIENT KILL, a failover), the lookup in flight still answers from the cache, and the next
    ones reconnect."""
    server = private_redis_factory()
    point_embedding_cache_at(settings, server.url)
    settings.EMBEDDING_CACHE_RETRY_AFTER = 60  # an error would skip the cache for a minute: none may happen
    generate_embedding("kept")
    generate_embedding("kept")  # the lookup's own connection exists now
    cache = caches["embeddings"]
    admin = redis.Redis.from_url(server.url)
    assert admin.client_kill_filter(_type="normal", skipme=True) >= 2, "the lookups' and the pool's connections"
    for _ in range(3):
        assert np.allclose(generate_embedding("kept"), expected("kept"))
    policy = get_embedding_cache().failure_policy
    assert policy.errors_total == 0 and not policy.is_open
    counters = cache.read_counters()
    assert (counters["hits"], counters["misses"]) == (4, 1)
    assert _lookup_connections.connection.is_connected, "the lookups are back on their own connection"


@pytest.mark.redis
def test_a_lookup_timeout_is_raised_not_repeated(settings, private_redis_factory, monkeypatch):
    """A server too slow for the socket timeout: the lookup fails as the client's would (the call is served by the
    provider) and is not repeated through the client, which would wait a second timeout."""
    server = private_redis_factory()
    point_embedding_cache_at(settings, server.url)
    settings.EMBEDDING_CACHE_RETRY_AFTER = 0
    generate_embedding("slow")
    generate_embedding("slow")  # the lookup's own connection exists now
    through_the_client = []
    original = redis.Redis.mget
    monkeypatch.setattr(
        redis.Redis, "mget", lambda self, *a, **k: through_the_client.append(a) or original(self, *a, **k)
    )
    redis.Redis.from_url(server.url).client_pause(1000)  # normal clients wait a second: past the 0.25 s timeout
    assert np.allclose(generate_embedding("slow"), expected("slow"))
    assert get_embedding_cache().failure_policy.errors_total >= 1, "the timeout is counted"
    assert through_the_client == []


@pytest.mark.redis
def test_concurrent_lookups_each_get_their_own_answer(settings, private_redis_factory):
    """Eight threads looking up different texts at once: every answer is its own text's vector (one connection
    shared by two threads would hand one thread another's reply)."""
    server = private_redis_factory()
    point_embedding_cache_at(settings, server.url)
    texts = [f"text {index}" for index in range(40)]
    for text in texts:
        generate_embedding(text)
    wrong: list[str] = []

    def look_up(offset: int) -> None:
        for round_ in range(25):
            text = texts[(offset + round_) % len(texts)]
            if not np.allclose(generate_embedding(text), expected(text)):
                wrong.append(text)

    threads = [threading.Thread(target=look_up, args=(offset,)) for offset in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    assert get_embedding_cache().failure_policy.errors_total == 0
    assert caches["embeddings"].read_counters()["hits"] == 8 * 25
