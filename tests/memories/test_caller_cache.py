"""The web processes' copies of callers' memories (memories.caller_cache): the same candidates as the database's
statement, and never an outdated answer, whoever wrote, whatever Redis did. PostgreSQL and Redis only."""

import json
import re
import urllib.request

import numpy as np
import pytest
from django.core.cache import caches
from django.db import connection, transaction
from django.utils import timezone

from memories import hybrid_sql
from memories.caller_cache import (
    EVERYONE_KEY,
    MEMORY_OVERHEAD_BYTES,
    QUERIES,
    CallerCache,
    callers,
    everyone_changed,
    parse_tsvector,
    token_key,
)
from memories.models import Memory, text_fingerprint
from memories.owners import default_owner
from memories.query import query_memories
from memories.services import NewMemory, create_memory, delete_memory, forget_user
from memories.vector_plans import Plan, plans
from testkit.elevenlabs import TOOL_SECRET, TOOL_URL
from testkit.processes import Gunicorn
from tests.conftest import app_env, redis_embedding_cache_config
from tests.factories import make_memory, near, random_unit_vector
from tests.memories.hybrid_data import QUERIES as QUESTIONS
from tests.memories.hybrid_data import SCOPES

pytestmark = [pytest.mark.django_db, pytest.mark.postgres, pytest.mark.redis]


def candidates(cache: CallerCache, owner, embedding, query="dog thunder", scope=SCOPES[0], limit=6):
    return cache.candidates(embedding, query, owner, scope, limit, hybrid=True)


def ids(found) -> set[int]:
    dense, lexical, _ = found
    return {match.memory_id for match in dense} | set(lexical)


def counted(outcome: str) -> float:
    return QUERIES.labels(outcome)._value.get()


def insert_behind_the_cache(owner, text: str, embedding) -> int:
    """A memory written in bulk: no signal, no token replaced (what the copies cannot see, like raw SQL)."""
    now = timezone.now()
    (memory,) = Memory.objects.bulk_create(
        [
            Memory(
                user_id=owner.user_id,
                text=text,
                text_hash=text_fingerprint(text),
                embedding=embedding,
                embedding_model="test",
                created_at=now,
                occurred_at=now,
                last_accessed_at=now,
            )
        ]
    )
    return memory.pk


@pytest.mark.parametrize("bound", [500, 2])
@pytest.mark.parametrize("scope", SCOPES, ids=["everything", "answers", "episodic", "emotional-notes"])
def test_the_copy_finds_what_the_statement_finds(alice, settings, scope, bound):
    owner, base, rng = alice
    settings.MEMORY_LEXICAL_MAX_DOCUMENTS = bound
    for query in [*QUESTIONS, "Rex's dog-food (brand) changed", "Caroline's puppy"]:
        embedding = near(base, 0.7, rng)
        expected_dense, expected_lexical, expected_rows = hybrid_sql.candidates(embedding, query, owner, scope, 6, True)
        for _ in range(2):  # loaded, then from the copy
            dense, lexical, rows = callers.candidates(embedding, query, owner, scope, 6, hybrid=True)
            assert [match.memory_id for match in dense] == [match.memory_id for match in expected_dense]
            for mine, theirs in zip(dense, expected_dense, strict=True):
                assert mine.similarity == pytest.approx(theirs.similarity, abs=1e-6)
            assert lexical == expected_lexical, query
            assert rows.keys() == expected_rows.keys()
            for memory_id, memory in rows.items():
                for field in ("text", "kind", "sector", "extra_sectors", "occurred_at", "salience", "user_id"):
                    assert getattr(memory, field) == getattr(expected_rows[memory_id], field)
        assert callers.candidates(embedding, query, owner, scope, 6, hybrid=False)[1] == []


TEXT = "It's O'Brien's path/to 'quoted' dog dog dog, co-op 3.14 e-mail@x.org; Zoë naïve ünïcode 東京 ok"
LITERAL = "'it''s':1,3 'back\\\\slash':2 'both''\\\\':5B plain:4A 'stripped'"  # lexemes to_tsvector never makes


@pytest.mark.parametrize(
    "vector",
    ["to_tsvector('simple', %s)", "to_tsvector('english', %s)", "%s::tsvector"],
    ids=["simple", "english", "literal"],
)
def test_tsvector_text_is_read_as_postgresql_unnests_it(vector):
    value = LITERAL if vector.startswith("%s") else TEXT
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT ({vector})::text, ARRAY(SELECT lexeme FROM unnest({vector})), "
            f"ARRAY(SELECT COALESCE(array_length(positions, 1), 1) FROM unnest({vector})), strip({vector})::text",
            [value] * 4,
        )
        written, lexemes, frequencies, stripped = cursor.fetchone()
    assert len(lexemes) >= 5
    assert parse_tsvector(written) == list(zip(lexemes, frequencies, strict=True))
    assert parse_tsvector(stripped) == [(lexeme, 1) for lexeme in lexemes]
    assert parse_tsvector("") == parse_tsvector(None) == []


def test_a_second_query_is_answered_from_the_copy(alice):
    owner = alice[0]
    hits, loads = counted("hit"), counted("load")
    for _ in range(3):
        query_memories(owner, "dog thunder", limit=3)
    assert (counted("load") - loads, counted("hit") - hits) == (1, 2)
    assert callers.info()["callers"] == 1


def test_the_tokens_ride_in_the_embeddings_round_trip(alice, settings, private_redis_factory):
    """A query of a caller whose copy is current sends Redis one command: the MGET of the query's embedding and the
    caller's two tokens (and, at most once a second, the hit counters in the same pipeline)."""
    owner = alice[0]
    redis = private_redis_factory()
    settings.CACHES = {**settings.CACHES, "embeddings": redis_embedding_cache_config(redis.url)}
    query_memories(owner, "dog thunder", limit=3)  # embeds, loads the copy
    client = caches["embeddings"].redis()
    client.config_resetstat()
    hits = counted("hit")
    query_memories(owner, "dog thunder", limit=3)
    commands = {name: stats["calls"] for name, stats in client.info("commandstats").items()}
    assert counted("hit") == hits + 1
    assert commands.pop("cmdstat_mget") == 1
    assert set(commands) <= {"cmdstat_hincrby", "cmdstat_config|resetstat", "cmdstat_info"}, commands


def test_a_write_in_this_process_is_seen_by_the_next_query(alice):
    owner = alice[0]
    assert all("zeppelin" not in item.memory.text for item in query_memories(owner, "zeppelin").memories)
    create_memory(owner, NewMemory("I flew in a zeppelin over Lake Constance"))
    assert query_memories(owner, "zeppelin", limit=1).memories[0].memory.text.startswith("I flew in a zeppelin")


def test_another_process_sees_a_committed_write_by_the_token(alice, django_capture_on_commit_callbacks):
    owner, base, rng = alice
    other_process = CallerCache()  # a web process that did not make the write
    embedding = near(base, 0.7, rng)
    before = ids(candidates(other_process, owner, embedding, "zeppelin"))
    with django_capture_on_commit_callbacks(execute=True):
        new = make_memory(owner.user_id, "A zeppelin ride for my birthday", embedding=embedding)
    assert new.pk not in before
    assert new.pk in ids(candidates(other_process, owner, embedding, "zeppelin"))


def test_deleting_and_forgetting_are_seen_by_other_processes(alice, django_capture_on_commit_callbacks):
    owner, base, rng = alice
    other_process = CallerCache()
    embedding = near(base, 0.7, rng)
    found = ids(candidates(other_process, owner, embedding))
    victim = min(found)
    with django_capture_on_commit_callbacks(execute=True):
        delete_memory(Memory.objects.get(pk=victim))
    assert victim not in ids(candidates(other_process, owner, embedding))
    with django_capture_on_commit_callbacks(execute=True):
        forget_user(owner)
    assert ids(candidates(other_process, owner, embedding)) == set()


def test_whole_table_changes_replace_everyones_token(alice, django_capture_on_commit_callbacks):
    owner, base, rng = alice
    other_process = CallerCache()
    embedding = near(base, 0.7, rng)
    candidates(other_process, owner, embedding)
    everyone = caches["embeddings"].get(EVERYONE_KEY)
    new = insert_behind_the_cache(owner, "A zeppelin", embedding)
    with django_capture_on_commit_callbacks(execute=True):
        everyone_changed()
    assert caches["embeddings"].get(EVERYONE_KEY) != everyone
    assert new in ids(candidates(other_process, owner, embedding, "zeppelin"))


def test_a_write_is_replaced_once_per_transaction_and_a_rollback_loses_nothing(
    alice,
    django_capture_on_commit_callbacks,
):
    owner, base, rng = alice
    bob = default_owner("bob")
    with django_capture_on_commit_callbacks() as hooks:
        for text in ("one", "two", "three"):
            make_memory("alice", f"alice says {text}")
            make_memory("bob", f"bob says {text}")
    for who in (owner, bob):
        caches["embeddings"].set(token_key(who), b"before", None)
    hooks[0]()  # the first hook replaces both callers' tokens, in one round trip ...
    replaced = [caches["embeddings"].get(token_key(who)) for who in (owner, bob)]
    assert b"before" not in replaced and None not in replaced
    for hook in hooks[1:]:
        hook()  # ... and the others have nothing left to replace
    assert [caches["embeddings"].get(token_key(who)) for who in (owner, bob)] == replaced

    other_process = CallerCache()
    embedding = near(base, 0.7, rng)
    candidates(other_process, owner, embedding)
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            make_memory("alice", "a zeppelin that never was", embedding=embedding)
            raise RuntimeError("rolled back")
        kept = make_memory("alice", "a zeppelin that was", embedding=embedding)
    assert kept.pk in ids(candidates(other_process, owner, embedding, "zeppelin"))


def test_an_evicted_token_is_a_new_token_never_an_old_one(alice):
    owner, base, rng = alice
    other_process = CallerCache()
    embedding = near(base, 0.7, rng)
    candidates(other_process, owner, embedding)
    new = insert_behind_the_cache(owner, "A zeppelin", embedding)
    caches["embeddings"].delete(token_key(owner))  # Redis's LRU evicted it
    assert new in ids(candidates(other_process, owner, embedding, "zeppelin"))


def test_a_copy_is_used_for_a_bounded_time(alice, settings):
    owner, base, rng = alice
    settings.MEMORY_CALLER_CACHE_SECONDS = 0  # what raw SQL writes is seen once a copy expires
    other_process = CallerCache()
    embedding = near(base, 0.7, rng)
    candidates(other_process, owner, embedding)
    new = insert_behind_the_cache(owner, "A zeppelin", embedding)
    assert new in ids(candidates(other_process, owner, embedding, "zeppelin"))


def test_unreachable_redis_means_the_database_and_owed_tokens_are_paid_later(
    alice,
    settings,
    private_redis_factory,
    django_capture_on_commit_callbacks,
):
    owner, base, rng = alice
    redis = private_redis_factory()
    settings.CACHES = {**settings.CACHES, "embeddings": redis_embedding_cache_config(redis.url)}
    settings.EMBEDDING_CACHE_RETRY_AFTER = 0
    process = CallerCache()
    embedding = near(base, 0.7, rng)
    candidates(process, owner, embedding)
    old_token = caches["embeddings"].get(token_key(owner))
    redis.stop()
    database = counted("database")
    assert candidates(process, owner, embedding) is None  # not trusted: the caller takes the database path
    assert counted("database") == database + 1
    assert query_memories(owner, "dog thunder", limit=2).memories  # and is answered
    process.replace_tokens({owner})  # a write this process committed while Redis was down
    redis.start()  # same port, and (as if it had kept its data) the old token back
    caches["embeddings"].set(token_key(owner), old_token, None)
    candidates(process, owner, embedding)  # the owed token is replaced before any is read
    assert caches["embeddings"].get(token_key(owner)) not in (old_token, None)


def test_the_budget_keeps_the_most_recent_callers(settings, django_capture_on_commit_callbacks):
    rng = np.random.default_rng(3)
    owners = [default_owner(f"caller-{number}") for number in range(4)]
    for owner in owners:
        for index in range(40):
            make_memory(owner.user_id, f"{owner.user_id} memory {index}", embedding=random_unit_vector(rng))
    plans.forget()
    entry_bytes = []
    process = CallerCache()
    for owner in owners[:1]:
        candidates(process, owner, random_unit_vector(rng))
        entry_bytes.append(process.info()["bytes"])
    settings.MEMORY_CALLER_CACHE_MB = 1
    one_mb = 1024 * 1024
    fits = one_mb // entry_bytes[0]
    assert fits >= 2, "the test's callers must be small enough that several fit"
    assert fits < len(owners), "and not all of them"
    process = CallerCache()
    for owner in owners:
        candidates(process, owner, random_unit_vector(rng))
    assert process.info()["bytes"] <= one_mb
    assert process.info()["callers"] == fits
    hits, loads = counted("hit"), counted("load")
    candidates(process, owners[-1], random_unit_vector(rng))  # the most recent: held
    assert (counted("hit"), counted("load")) == (hits + 1, loads)
    candidates(process, owners[0], random_unit_vector(rng))  # the least recent: had to leave
    assert (counted("hit"), counted("load")) == (hits + 1, loads + 1)


def test_a_caller_bigger_than_the_budget_is_not_read_again_for_a_while(settings, django_assert_num_queries):
    rng = np.random.default_rng(4)
    settings.MEMORY_CALLER_CACHE_MB = 1
    per_memory = 4 * settings.EMBEDDING_DIMENSIONS + MEMORY_OVERHEAD_BYTES
    owner = default_owner("talkative")
    for index in range(1024 * 1024 // per_memory):
        make_memory("talkative", f"talkative memory {index}", embedding=random_unit_vector(rng))
    plans.forget()
    process = CallerCache()
    database = counted("database")
    assert candidates(process, owner, random_unit_vector(rng)) is None  # read once, too big to hold
    with django_assert_num_queries(0):
        assert candidates(process, owner, random_unit_vector(rng)) is None  # not read again
    assert counted("database") == database + 2
    assert process.info()["callers"] == 0


def test_a_process_without_copies_still_replaces_the_tokens_of_what_it_writes(
    alice, settings, django_capture_on_commit_callbacks
):
    owner, base, rng = alice
    web_process = CallerCache()
    embedding = near(base, 0.7, rng)
    candidates(web_process, owner, embedding)
    settings.MEMORY_CALLER_CACHE_MB = 0  # the writing process (a task worker, say) keeps no copies itself
    with django_capture_on_commit_callbacks(execute=True):
        new = make_memory(owner.user_id, "A zeppelin", embedding=embedding)
    settings.MEMORY_CALLER_CACHE_MB = 128
    assert new.pk in ids(candidates(web_process, owner, embedding, "zeppelin"))


def test_a_caller_past_the_exact_plan_is_not_held(settings):
    rng = np.random.default_rng(3)
    owner = default_owner("busy")
    settings.MEMORY_HNSW_MIN_USER_MEMORIES = 5
    for index in range(4):
        make_memory("busy", f"busy memory {index}", embedding=random_unit_vector(rng))
    assert plans.choose(owner) == Plan.EXACT  # remembered for a minute ...
    for index in range(4, 6):
        make_memory("busy", f"busy memory {index}", embedding=random_unit_vector(rng))  # ... but they outgrow it
    database = counted("database")
    assert candidates(CallerCache(), owner, random_unit_vector(rng)) is None
    assert counted("database") == database + 1
    assert plans.choose(owner) == Plan.SHARED_HNSW  # chosen again at once


@pytest.mark.usefixtures("call_secrets")
def test_two_gunicorn_workers_never_answer_from_an_outdated_copy(transactional_db, settings):
    """Two worker processes each hold a copy of the caller; a write committed by another process (here the test)
    is in every answer that follows, whichever worker serves it."""
    owner = default_owner("dora")
    for text in ("I live in Lisbon", "My cat is called Pixel", "I work nights at the hospital"):
        create_memory(owner, NewMemory(text))
    server = Gunicorn({**app_env(settings), "WEB_WORKERS": "2", "WEB_THREADS": "2", "METRICS_TOKEN": "metrics-test"})
    server.start()
    try:

        def ask() -> list[str]:
            request = urllib.request.Request(
                f"http://127.0.0.1:{server.port}{TOOL_URL}",
                data=json.dumps({"query": "zeppelin ride", "user_id": "dora", "limit": 5}).encode(),
                headers={"Content-Type": "application/json", "X-Memory-Secret": TOOL_SECRET},
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                return [memory["text"] for memory in json.load(response)["memories"]]

        for _ in range(12):  # enough for both workers to load their copy
            assert "I rode a zeppelin" not in ask()
        create_memory(owner, NewMemory("I rode a zeppelin over Lisbon"))
        assert connection.get_autocommit()  # committed: the workers read it
        for _ in range(12):
            assert "I rode a zeppelin over Lisbon" in ask()
        request = urllib.request.Request(
            f"http://127.0.0.1:{server.port}/metrics", headers={"Authorization": "Bearer metrics-test"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            metrics = response.read().decode()
        hits = re.search(r'memory_caller_cache_queries_total\{outcome="hit"\} ([0-9.e+]+)', metrics)
        assert hits and float(hits.group(1)) >= 10, "the workers answered from their copies"
    finally:
        server.stop()
