"""The exact plan's one-statement hybrid search (memories.hybrid_sql) against the separate path it replaces: the
same dense order and similarities, the same lexical order, the same rows, for any scope; PostgreSQL only."""

import pytest

from memories import hybrid_sql
from memories.models import Memory, Space
from memories.owners import Owner
from memories.query import Retrieval, query_memories
from memories.search import load_results
from memories.search_backends import EVERYTHING, get_search_backend
from memories.text_search import lexical_search
from memories.vector_plans import plans
from tests.factories import make_memory, near
from tests.memories.hybrid_data import QUERIES, SCOPES

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.mark.parametrize("bound", [500, 2])  # 2: the words in more than two memories are too common to match
@pytest.mark.parametrize("scope", SCOPES, ids=["everything", "answers", "episodic", "emotional-notes"])
def test_one_statement_finds_what_the_three_statements_find(alice, settings, scope, bound):
    owner, base, rng = alice
    settings.MEMORY_LEXICAL_MAX_DOCUMENTS = bound
    assert hybrid_sql.applies(owner)
    for query in QUERIES:
        embedding = near(base, 0.7, rng)
        dense, lexical, rows = hybrid_sql.candidates(embedding, query, owner, scope, 6, hybrid=True)
        expected_dense = get_search_backend().search(embedding, owner, scope, 6)
        assert [match.memory_id for match in dense] == [match.memory_id for match in expected_dense]
        for mine, theirs in zip(dense, expected_dense, strict=True):
            assert mine.similarity == pytest.approx(theirs.similarity, abs=1e-6)
        assert lexical == [match.memory_id for match in lexical_search(query, owner, scope, 6)], query
        expected_rows = load_results({match.memory_id for match in expected_dense} | set(lexical), owner)
        assert rows.keys() == expected_rows.keys()
        for memory_id, memory in rows.items():
            for field in ("space_id", "user_id", "kind", "text", "sector", "extra_sectors", "salience"):
                assert getattr(memory, field) == getattr(expected_rows[memory_id], field)
            assert memory.occurred_at == expected_rows[memory_id].occurred_at
            assert memory.owner == owner


@pytest.mark.parametrize("hybrid", [True, False])
def test_the_query_answers_the_same_either_way(alice, monkeypatch, hybrid):
    owner = alice[0]
    retrieval = Retrieval.from_settings(hybrid=hybrid)
    for query in QUERIES:
        fast = query_memories(owner, query, limit=5, reinforce_results=False, retrieval=retrieval)
        with monkeypatch.context() as patched:
            patched.setattr(hybrid_sql, "applies", lambda owner: False)
            slow = query_memories(owner, query, limit=5, reinforce_results=False, retrieval=retrieval)
        assert [item.memory.pk for item in fast.memories] == [item.memory.pk for item in slow.memories], query
        assert [item.score for item in fast.memories] == pytest.approx([item.score for item in slow.memories])


def test_other_users_and_spaces_are_never_candidates(alice):
    owner, base, rng = alice
    other = Space.objects.create(slug="other", name="Other")
    other_space = Owner(other.pk, "alice")
    make_memory("alice", "Dog thunder invoice Caroline email", space_id=other.pk)
    _, lexical, rows = hybrid_sql.candidates(near(base, 0.9, rng), "dog thunder", owner, EVERYTHING, 50, True)
    assert {memory.owner for memory in rows.values()} == {owner}
    assert set(lexical) <= set(rows) and not Memory.objects.filter(pk__in=rows, user_id="bob").exists()
    _, _, theirs = hybrid_sql.candidates(near(base, 0.9, rng), "dog", other_space, EVERYTHING, 50, True)
    assert [memory.text for memory in theirs.values()] == ["Dog thunder invoice Caroline email"]


def test_heavy_users_keep_the_separate_path(alice, settings):
    owner = alice[0]
    settings.MEMORY_HNSW_MIN_USER_MEMORIES = 5
    plans.forget()
    assert not hybrid_sql.applies(owner)
