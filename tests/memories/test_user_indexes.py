"""Dedicated HNSW indexes for heavy users: built concurrently, used by their searches only, dropped on forget."""

from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from memories import user_indexes
from memories.models import Memory, UserVectorIndex
from memories.owners import default_owner
from memories.search_backends import EVERYTHING
from memories.services import forget_user
from memories.vector_plans import DEDICATED_INDEX_PREFIX, plans
from tests.factories import make_memory, random_unit_vector

QUOTED_USER = "o'brien'); DROP TABLE memories_memory; --"


def reference_order(query, user_id: str, limit: int) -> list[int]:
    memories = Memory.objects.filter(user_id=user_id)
    scored = sorted((-float(np.dot(query, memory.embedding)), memory.pk) for memory in memories)
    return [pk for _, pk in scored[:limit]]


def index_definition(name: str) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [name])
        row = cursor.fetchone()
    return row[0] if row else None


def explain(user_id: str, query, dedicated: bool) -> str:
    """The plan PostgreSQL picks for an approximate search, sent exactly as the backend sends it."""
    from memories.search_backends.pgvector import hnsw_query, vector_cursor

    sql, params = hnsw_query(
        np.asarray(query, dtype=np.float32), default_owner(user_id), EVERYTHING, 10, dedicated=dedicated
    )
    if dedicated:  # one statement, outside any transaction, without enable_sort
        with vector_cursor() as cursor:
            cursor.execute("EXPLAIN " + sql, params, binary=True, prepare=False)
            return "\n".join(row[0] for row in cursor.fetchall())
    with transaction.atomic(), vector_cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("EXPLAIN " + sql, params, binary=True, prepare=False)
        return "\n".join(row[0] for row in cursor.fetchall())


def run(*args) -> str:
    out = StringIO()
    call_command("sync_user_indexes", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def population(settings):
    """whale 80 memories, dolphin 60, seal 55, shrimp 20; indexes from 50 memories, at most two."""
    settings.MEMORY_HNSW_MIN_USER_MEMORIES = 30
    settings.MEMORY_USER_INDEX_MIN_MEMORIES = 50
    settings.MEMORY_USER_INDEX_MAX = 2
    settings.MEMORY_USER_INDEX_EF_SEARCH = 100
    settings.MEMORY_PLAN_CACHE_SECONDS = 0
    rng = np.random.default_rng(5)
    for user_id, count in (("whale", 80), ("dolphin", 60), ("seal", 55), ("shrimp", 20)):
        for _ in range(count):
            make_memory(user_id, embedding=random_unit_vector(rng))
    yield rng
    # Indexes live in the schema, which the test database keeps between tests: drop them.
    for name in user_indexes.existing_indexes():
        user_indexes._drop_index(name)
    plans.forget()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("user_id", ["whale", QUOTED_USER])
def test_a_built_index_is_partial_to_the_user_and_their_searches_use_it(population, user_id):
    from memories.search_backends.pgvector import PgVectorSearch

    if user_id == QUOTED_USER:
        for _ in range(3):
            make_memory(user_id, embedding=random_unit_vector(population))
    record = user_indexes.build_user_index(default_owner(user_id))
    assert record.status == "ready" and record.build_seconds is not None and record.ready_at is not None
    assert record.memories_at_build == Memory.objects.filter(user_id=user_id).count()
    definition = index_definition(record.index_name)
    assert "hnsw" in definition and "halfvec_cosine_ops" in definition
    assert "WHERE" in definition and user_id.replace("'", "''") in definition
    assert user_indexes.existing_indexes() == {record.index_name: True}
    assert Memory.objects.count() == 215 + (3 if user_id == QUOTED_USER else 0), "the quoted id ran nothing"

    backend = PgVectorSearch()
    assert plans.choose(default_owner(user_id)) == "dedicated"
    assert plans.choose(default_owner("dolphin")) == "hnsw"
    query = random_unit_vector(population)
    assert record.index_name in explain(user_id, query, dedicated=True)
    assert record.index_name not in explain(user_id, query, dedicated=False), "the shared plan keeps to its index"
    assert record.index_name not in explain("dolphin", query, dedicated=True)
    limit = min(10, Memory.objects.filter(user_id=user_id).count())
    found = [match.memory_id for match in backend.search(query, default_owner(user_id), EVERYTHING, limit)]
    assert found == reference_order(query, user_id, limit)
    with transaction.atomic():  # inside a transaction the plan takes the SET LOCAL path: same answer
        assert [match.memory_id for match in backend.search(query, default_owner(user_id), EVERYTHING, limit)] == found
    assert set(Memory.objects.filter(pk__in=found).values_list("user_id", flat=True)) == {user_id}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_sync_builds_for_the_heaviest_users_drops_what_is_no_longer_needed(population):
    dry = run("--dry-run")
    assert "2 to build" in dry and "build  whale (80 memories)" in dry and "build  dolphin (60 memories)" in dry
    assert "seal" not in dry and "Dry run: nothing changed." in dry
    assert not UserVectorIndex.objects.exists() and not user_indexes.existing_indexes()

    out = run()
    assert "[1/2] building the index of whale" in out and "Built 2, kept 0, dropped 0, failed 0." in out
    assert set(UserVectorIndex.objects.values_list("user_id", "status")) == {("whale", "ready"), ("dolphin", "ready")}
    assert "Built 0, kept 2" in run(), "a second run has nothing to do"

    # dolphin falls below half the threshold: its index goes, seal (now among the two heaviest) gets one.
    Memory.objects.filter(pk__in=Memory.objects.filter(user_id="dolphin").values("pk")[:40]).delete()
    with connection.cursor() as cursor:  # an index left behind by a forgotten user whose drop never ran
        cursor.execute(
            f"CREATE INDEX {DEDICATED_INDEX_PREFIX}0000 ON memories_memory USING hnsw "
            "(embedding vector_cosine_ops) WHERE user_id = 'gone'"
        )
    out = run()
    assert "drop   dolphin" in out and "build  seal (55 memories)" in out and "(no user recorded)" in out
    assert "Built 1, kept 1, dropped 2, failed 0." in out
    assert set(UserVectorIndex.objects.values_list("user_id", flat=True)) == {"whale", "seal"}
    assert len(user_indexes.existing_indexes()) == 2

    listing = run("--list")
    assert "whale: ready, 80 memories at build" in listing and "valid" in listing


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_dropped_index_is_rebuilt_and_a_failed_build_leaves_nothing(population, monkeypatch):
    record = user_indexes.build_user_index(default_owner("whale"))
    user_indexes._drop_index(record.index_name)  # lost behind our back (a restore, a manual DROP)
    assert "build  whale" in run("--dry-run")

    monkeypatch.setattr(user_indexes, "BUILD_SQL", user_indexes.BUILD_SQL.replace("m = 24", "m = 1000"))
    failed = user_indexes.build_user_index(default_owner("whale"))
    assert failed.status == "failed" and "m" in failed.last_error
    assert user_indexes.existing_indexes() == {}
    with pytest.raises(CommandError, match="failed 2"):
        run()
    monkeypatch.undo()
    assert "Built 2" in run(), "failed builds are retried"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_forgetting_a_user_drops_their_index(population):
    record = user_indexes.build_user_index(default_owner("whale"))
    counts = forget_user(default_owner("whale"))
    assert counts["vector_indexes"] == 1
    assert not UserVectorIndex.objects.filter(user_id="whale").exists()
    assert index_definition(record.index_name) is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_user_who_becomes_heavy_after_a_call_gets_an_index_from_the_worker(population, client, settings):
    from calls.models import WebhookEvent
    from calls.tasks import process_webhook_event_task
    from memories.tasks import schedule_user_index_if_needed
    from testkit.elevenlabs import transcription_payload
    from testkit.tasks import drain_task_queue

    settings.MEMORY_USER_INDEX_MAX = 5
    for _ in range(48):
        make_memory("usr_caller", embedding=random_unit_vector(population))
    assert not schedule_user_index_if_needed(default_owner("usr_caller")), "48 memories: below the threshold"
    event = WebhookEvent.objects.create(
        event_type="post_call_transcription",
        dedupe_key="test-heavy",
        body_sha256="0" * 64,
        payload=transcription_payload(user_id="usr_caller"),
    )
    assert process_webhook_event_task.call(event.pk) == "processed"
    record = UserVectorIndex.objects.get(user_id="usr_caller")
    assert record.status == "queued"
    assert not schedule_user_index_if_needed(default_owner("usr_caller")), "queued once"

    drain_task_queue()
    record.refresh_from_db()
    assert record.status == "ready" and record.memories_at_build >= 50
    assert user_indexes.existing_indexes() == {record.index_name: True}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_no_index_is_queued_beyond_the_maximum(population, settings):
    settings.MEMORY_USER_INDEX_MAX = 1
    assert user_indexes.reserve_index(default_owner("whale"))
    assert not user_indexes.reserve_index(default_owner("dolphin"))
    assert list(UserVectorIndex.objects.values_list("user_id", flat=True)) == ["whale"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_building_inside_a_transaction_is_refused(population):
    with transaction.atomic(), pytest.raises(RuntimeError, match="inside a transaction"):
        user_indexes.build_user_index(default_owner("whale"))


@pytest.mark.django_db
def test_dedicated_indexes_exist_on_postgresql_only():
    if connection.vendor == "sqlite":
        assert not user_indexes.enabled()
        assert not user_indexes.reserve_index(default_owner("anyone"))
        with pytest.raises(CommandError, match="need PostgreSQL"):
            run()
    else:
        assert user_indexes.enabled()
        assert "0 to build" in run("--dry-run")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_user_forgotten_while_their_index_builds_leaves_no_index(population, monkeypatch):
    literal = user_indexes._literal

    def forget_then_quote(value):  # runs just before CREATE INDEX, as a forget_user from another process would
        forget_user(default_owner("whale"))
        return literal(value)

    monkeypatch.setattr(user_indexes, "_literal", forget_then_quote)
    user_indexes.build_user_index(default_owner("whale"))
    assert not UserVectorIndex.objects.exists()
    assert user_indexes.existing_indexes() == {}
    assert not Memory.objects.filter(user_id="whale").exists()
