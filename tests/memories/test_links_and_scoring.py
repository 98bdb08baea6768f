from datetime import timedelta

import pytest
from django.utils import timezone

from memories.models import Memory
from memories.owners import default_owner
from memories.query import query_memories
from memories.reinforcement import reinforce
from memories.scoring import ScoredMemory, rank
from memories.search import expand_via_links, vector_search
from memories.search_backends import Scope
from tests.factories import make_link, make_memory, near, random_unit_vector

pytestmark = pytest.mark.django_db
ALL_TERMS = {"relevance": 0.70, "salience": 0.15, "recency": 0.10, "link": 0.05, "sector": 0.05}


def hits(query, user_id: str, limit: int) -> list[ScoredMemory]:
    """The user's nearest memories, scored by their cosine (what the ranking gives direct hits)."""
    found = vector_search(query, default_owner(user_id), limit=limit)
    for item in found:
        item.score = item.similarity
    return found


def test_expansion_fills_slots_after_the_hits_with_one_hop_and_attenuated_scores(settings):
    settings.MEMORY_LINK_ATTENUATION = 0.5
    query = random_unit_vector()
    hit = make_memory("alice", "booked a flight to Rome", embedding=near(query, 0.9))
    neighbour = make_memory("alice", "hotel near the Colosseum", embedding=random_unit_vector())
    two_hops = make_memory("alice", "the hotel's wifi password", embedding=random_unit_vector())
    make_link(hit, neighbour, weight=0.8)
    make_link(neighbour, two_hops, weight=1.0)
    matches = hits(query, "alice", limit=1)
    expanded = expand_via_links(matches, max_total=10)
    assert [item.memory.pk for item in expanded] == [hit.pk, neighbour.pk]
    assert expanded[1].linked_from == hit.pk
    assert expanded[1].score == pytest.approx(0.9 * 0.8 * 0.5, abs=1e-4)
    assert expanded[1].link_weight == 0.8
    assert expand_via_links(matches, max_total=1) == matches, "never displacing a hit"


def test_expansion_keeps_to_the_sectors_asked_for():
    query = random_unit_vector()
    hit = make_memory("alice", "went to Rome", embedding=near(query, 0.9), sector="episodic")
    feeling = make_memory("alice", "felt happy there", sector="emotional")
    trip = make_memory("alice", "the flight back", sector="episodic")
    make_link(hit, feeling, weight=0.9)
    make_link(hit, trip, weight=0.5)
    found = [item.memory.pk for item in expand_via_links(hits(query, "alice", 1), 5, Scope.of(["episodic"]))]
    assert found == [hit.pk, trip.pk]


def test_links_are_followed_both_ways_without_duplicates_in_a_stable_order():
    query = random_unit_vector()
    first = make_memory("alice", "a", embedding=near(query, 0.9))
    second = make_memory("alice", "b", embedding=near(query, 0.8))
    shared = make_memory("alice", "c")
    other = make_memory("alice", "d")
    make_link(shared, first, weight=0.5)  # incoming link
    make_link(second, shared, weight=0.9)  # the same neighbour again, better: 0.8*0.9 > 0.9*0.5
    make_link(first, other, weight=0.5)
    matches = hits(query, "alice", limit=2)
    expanded = expand_via_links(matches, max_total=10)
    ids = [item.memory.pk for item in expanded]
    assert ids == [first.pk, second.pk, shared.pk, other.pk]
    assert len(ids) == len(set(ids))
    assert expanded[2].linked_from == second.pk
    assert ids == [item.memory.pk for item in expand_via_links(hits(query, "alice", limit=2), 10)]
    assert len(expand_via_links(matches, max_total=3)) == 3


def test_a_link_row_crafted_across_users_is_never_followed():
    query = random_unit_vector()
    mine = make_memory("alice", "my memory", embedding=near(query, 0.9))
    secret = make_memory("bob", "bob's secret", embedding=random_unit_vector())
    make_link(mine, secret, weight=1.0, user_id="alice")  # forged: claims to be alice's
    make_link(secret, mine, weight=1.0, user_id="bob")
    expanded = expand_via_links(hits(query, "alice", limit=5), max_total=10)
    assert [item.memory.pk for item in expanded] == [mine.pk]
    result = query_memories(default_owner("alice"), "anything at all", limit=10)
    assert secret.pk not in {item.memory.pk for item in result.memories}


def test_superseded_neighbours_are_not_added():
    query = random_unit_vector()
    hit = make_memory("alice", "hit", embedding=near(query, 0.9))
    newer = make_memory("alice", "newer")
    stale = make_memory("alice", "stale", superseded_by=newer)
    make_link(hit, stale, weight=1.0)
    assert [item.memory.pk for item in expand_via_links(hits(query, "alice", limit=1), 5)] == [hit.pk]


def scored(memory, relevance, link_weight=0.0):
    return ScoredMemory(memory=memory, similarity=relevance, relevance=relevance, link_weight=link_weight)


def test_scoring_order_relevance_first_then_salience_and_recency_when_weighted():
    now = timezone.now()

    def order(*items, weights=ALL_TERMS):
        return [item.memory.pk for item in rank(list(items), now=now, weights=weights)]

    strong = make_memory("alice", "strong match", salience=0.5)
    weak = make_memory("alice", "weak match", salience=0.5)
    assert order(scored(weak, 0.5), scored(strong, 0.9)) == [strong.pk, weak.pk]
    salient = make_memory("alice", "important", salience=0.9)
    faint = make_memory("alice", "trivial", salience=0.1)
    assert order(scored(faint, 0.8), scored(salient, 0.8)) == [salient.pk, faint.pk]
    fresh = make_memory("alice", "fresh", salience=0.5)
    old = make_memory("alice", "old", salience=0.5, age_days=120)
    assert order(scored(old, 0.8), scored(fresh, 0.8)) == [fresh.pk, old.pk]
    relevance_only = {name: 1.0 if name == "relevance" else 0.0 for name in ALL_TERMS}
    assert order(scored(salient, 0.5), scored(faint, 0.8), weights=relevance_only) == [faint.pk, salient.pk]


def test_salience_decays_by_sector_rate():
    now = timezone.now()
    long_ago = now - timedelta(days=100)
    emotional = make_memory("alice", "felt sad", sector="emotional", salience=0.8, last_accessed_at=long_ago)
    reflective = make_memory("alice", "values honesty", sector="reflective", salience=0.8, last_accessed_at=long_ago)
    ranked = rank([scored(emotional, 0.8), scored(reflective, 0.8)], now=now, weights=ALL_TERMS)
    assert [item.memory.pk for item in ranked] == [reflective.pk, emotional.pk]  # 0.020/day vs 0.001/day


def test_equal_scores_are_ordered_by_id():
    now = timezone.now()
    first, second = make_memory("alice", "one"), make_memory("alice", "two")
    first.created_at = second.created_at = first.last_accessed_at = second.last_accessed_at = now
    assert [i.memory.pk for i in rank([scored(second, 0.5), scored(first, 0.5)], now=now)] == [first.pk, second.pk]


def test_reinforcement_is_capped_and_never_saturates(settings):
    memory = make_memory("alice", "pinned", salience=0.5)
    for _ in range(3):
        reinforce([memory.pk])
    memory.refresh_from_db()
    assert 0.52 < memory.salience < 0.6, "a few hits nudge salience, they do not max it out"
    assert memory.access_count == 3
    for _ in range(200):
        reinforce([memory.pk])
    memory.refresh_from_db()
    assert memory.salience == pytest.approx(settings.MEMORY_REINFORCE_CAP)
    assert memory.salience < 1.0
    high = make_memory("alice", "set high by extraction", salience=0.97)
    reinforce([high.pk])
    high.refresh_from_db()
    assert high.salience == pytest.approx(0.97), "retrieval never lowers salience"


def test_query_reinforces_only_what_it_returns():
    query_vector_text = "pasta recipes"
    returned = make_memory("alice", "loves pasta recipes from Rome")
    untouched = make_memory("bob", "loves pasta recipes from Rome too")
    result = query_memories(default_owner("alice"), query_vector_text, limit=1)
    assert [item.memory.pk for item in result.memories] == [returned.pk]
    assert Memory.objects.get(pk=returned.pk).access_count == 1
    assert Memory.objects.get(pk=untouched.pk).access_count == 0
    assert set(result.timings_ms) >= {"embed", "search", "rank"}


def test_reinforcement_in_the_background_is_applied_by_the_buffer(settings):
    from memories.reinforcement import ReinforcementBuffer

    settings.MEMORY_REINFORCE_DELAY_SECONDS = 60  # the thread will not flush during the test
    memory = make_memory("alice", "often asked", salience=0.5)
    other = make_memory("alice", "asked once", salience=0.5)
    buffer = ReinforcementBuffer()
    try:
        buffer.add([memory.pk, other.pk])
        buffer.add([memory.pk])
        buffer.add([memory.pk])
        assert Memory.objects.get(pk=memory.pk).access_count == 0, "nothing written in the request"
        assert buffer.flush() == 2
    finally:
        buffer.stop()
    memory.refresh_from_db()
    other.refresh_from_db()
    assert (memory.access_count, other.access_count) == (3, 1)
    step = settings.MEMORY_REINFORCE_STEP
    assert memory.salience == pytest.approx(1 - 0.5 * (1 - step) ** 3)
    assert other.salience == pytest.approx(1 - 0.5 * (1 - step))
