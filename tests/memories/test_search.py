"""vector_search: one user only, current memories only, the same answers on both stacks."""

import numpy as np
import pytest
from django.db import connection

from memories.owners import default_owner
from memories.search import vector_search
from memories.search_backends import EVERYTHING
from memories.search_backends.exact import ExactNumpySearch
from memories.vector_plans import plans
from tests.factories import make_memory, near, random_unit_vector

pytestmark = pytest.mark.django_db


def reference_order(query, memories, limit):
    """Exact cosine in numpy, ties by id: what every backend must return."""
    scored = sorted((-float(np.dot(query, memory.embedding)), memory.pk) for memory in memories)
    return [pk for _, pk in scored[:limit]]


@pytest.fixture
def population():
    rng = np.random.default_rng(7)
    mine = [make_memory("alice", embedding=random_unit_vector(rng)) for _ in range(40)]
    theirs = [make_memory("bob", embedding=random_unit_vector(rng)) for _ in range(40)]
    return mine, theirs, rng


def test_results_equal_exact_cosine_on_this_stack(population):
    mine, _, rng = population
    for _ in range(5):
        query = random_unit_vector(rng)
        results = vector_search(query, default_owner("alice"), limit=10)
        assert [item.memory.pk for item in results] == reference_order(query, mine, 10)
        expected = sorted((float(np.dot(query, memory.embedding)) for memory in mine), reverse=True)[:10]
        assert np.allclose([item.similarity for item in results], expected, atol=1e-5)


def test_another_users_memories_never_come_back(population):
    _mine, theirs, _ = population
    for memory in theirs[:5]:
        results = vector_search(memory.embedding, default_owner("alice"), limit=50)
        assert {item.memory.user_id for item in results} == {"alice"}
        assert memory.pk not in {item.memory.pk for item in results}
    assert vector_search(theirs[0].embedding, default_owner("nobody"), limit=5) == []


def test_sector_filter_uses_primary_and_extra_sectors():
    query = random_unit_vector()
    episodic = make_memory("alice", "went to Rome", embedding=near(query, 0.9), sector="episodic")
    semantic = make_memory("alice", "likes pasta", embedding=near(query, 0.95), sector="semantic")
    both = make_memory(
        "alice", "felt happy in Rome", embedding=near(query, 0.8), sector="emotional", extra_sectors=["episodic"]
    )
    assert [m.memory.pk for m in vector_search(query, default_owner("alice"), ["episodic"])] == [episodic.pk, both.pk]
    assert [m.memory.pk for m in vector_search(query, default_owner("alice"), ["semantic"])] == [semantic.pk]
    assert len(vector_search(query, default_owner("alice"), None)) == 3


def test_superseded_memories_are_not_returned():
    query = random_unit_vector()
    new = make_memory("alice", "lives in Berlin", embedding=near(query, 0.9))
    make_memory("alice", "lives in Paris", embedding=near(query, 0.99), superseded_by=new)
    assert [item.memory.pk for item in vector_search(query, default_owner("alice"))] == [new.pk]


def test_limit_and_ordering_with_exact_similarities():
    query = random_unit_vector()
    made = {sim: make_memory("alice", f"sim {sim}", embedding=near(query, sim)) for sim in (0.2, 0.9, 0.5, 0.7)}
    results = vector_search(query, default_owner("alice"), limit=3)
    assert [item.memory.pk for item in results] == [made[0.9].pk, made[0.7].pk, made[0.5].pk]
    assert np.allclose([item.similarity for item in results], [0.9, 0.7, 0.5], atol=1e-4)


def test_exact_numpy_backend_matches_whatever_this_stack_uses(population):
    _mine, _, rng = population
    query = random_unit_vector(rng)
    exact = ExactNumpySearch().search(query, default_owner("alice"), EVERYTHING, 10)
    assert [match.memory_id for match in exact] == [
        item.memory.pk for item in vector_search(query, default_owner("alice"), limit=10)
    ]


@pytest.mark.postgres
def test_both_pgvector_plans_agree_with_exact_search(population, settings):
    from memories.search_backends.pgvector import PgVectorSearch

    assert connection.vendor == "postgresql"
    mine, _, rng = population
    backend = PgVectorSearch()
    for _ in range(5):
        query = random_unit_vector(rng)
        expected = reference_order(query, mine, 10)
        assert [
            m.memory_id for m in backend.search_with_plan("exact", query, default_owner("alice"), EVERYTHING, 10)
        ] == expected
        # HNSW is approximate; on 80 rows with ef_search 100 it finds the exact top 10.
        assert [
            m.memory_id for m in backend.search_with_plan("hnsw", query, default_owner("alice"), EVERYTHING, 10)
        ] == expected


@pytest.mark.postgres
def test_plan_is_chosen_by_the_users_memory_count(population, settings):
    settings.MEMORY_PLAN_CACHE_SECONDS = 0  # decide afresh on every call
    settings.MEMORY_HNSW_MIN_USER_MEMORIES = 40
    assert plans.choose(default_owner("alice")) == "hnsw"
    assert plans.choose(default_owner("carol")) == "exact"
    settings.MEMORY_HNSW_MIN_USER_MEMORIES = 41
    assert plans.choose(default_owner("alice")) == "exact"
    settings.MEMORY_HNSW_MIN_USER_MEMORIES = 0
    assert plans.choose(default_owner("alice")) == "exact"


@pytest.mark.postgres
def test_the_hnsw_index_exists():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'memory_embedding_hnsw'")
        (definition,) = cursor.fetchone()
    assert "hnsw" in definition and "vector_cosine_ops" in definition
