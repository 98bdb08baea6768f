"""The lexical index beside the vector index: BM25 over words, per user, kept in sync by the database."""

import pytest

from memories.models import Memory
from memories.owners import default_owner
from memories.query import Retrieval, query_memories
from memories.search_backends import EVERYTHING, Scope
from memories.text_search import lexical_search, query_terms
from tests.factories import make_memory

pytestmark = pytest.mark.django_db


def ids(matches) -> list[int]:
    return [match.memory_id for match in matches]


def test_rare_words_find_the_memory_and_rank_it_first():
    pottery = make_memory("alice", "I signed up for a pottery class on Tuesday")
    make_memory("alice", "I really like my class on Tuesday, really")
    make_memory("alice", "The weather was nice")
    found = lexical_search("When is her pottery class?", default_owner("alice"), EVERYTHING, 10)
    assert ids(found)[0] == pottery.pk
    assert all(match.score > 0 for match in found)


def test_only_the_users_own_current_memories_and_sectors():
    mine = make_memory("alice", "Caroline adopted a puppy", sector="episodic")
    make_memory("bob", "Caroline adopted a puppy too")
    newer = make_memory("alice", "Caroline adopted two puppies", sector="semantic")
    make_memory("alice", "Caroline adopted a kitten", superseded_by=newer)
    assert set(ids(lexical_search("Caroline puppy", default_owner("alice"), EVERYTHING, 10))) == {mine.pk, newer.pk}
    assert ids(lexical_search("Caroline puppy", default_owner("alice"), Scope.of(["episodic"]), 10)) == [mine.pk]
    assert lexical_search("Caroline puppy", default_owner("nobody"), EVERYTHING, 10) == []


def test_the_index_follows_edits_and_deletes():
    memory = make_memory("alice", "I play the violin")
    assert ids(lexical_search("violin", default_owner("alice"), EVERYTHING, 5)) == [memory.pk]
    Memory.objects.filter(pk=memory.pk).update(text="I play the cello")  # even a bulk update
    assert lexical_search("violin", default_owner("alice"), EVERYTHING, 5) == []
    assert ids(lexical_search("cello", default_owner("alice"), EVERYTHING, 5)) == [memory.pk]
    Memory.objects.filter(pk=memory.pk).delete()
    assert lexical_search("cello", default_owner("alice"), EVERYTHING, 5) == []


@pytest.mark.parametrize(
    "query",
    ["the and of it", "", "???", '" OR NEAR( ) * AND', "\ufffd", "日本語のテキスト", "x" * 900, "(a|b) & !c <-> d:*"],
)
def test_any_query_is_answered_without_an_error(query):
    make_memory("alice", "日本語のテキストを書きました and some English words")
    found = lexical_search(query, default_owner("alice"), EVERYTHING, 5)
    assert isinstance(found, list)
    if query.strip() in ("the and of it", "", "???"):
        assert found == [], "stop words and punctuation match nothing"


def test_query_terms_drop_stop_words_repeats_and_single_letters():
    assert query_terms("What did Caroline's dog eat, and what did the dog drink?") == [
        "caroline",
        "dog",
        "eat",
        "drink",
    ]
    assert query_terms("In 2023 I moved 3 times") == ["2023", "moved", "3", "times"]


def test_hybrid_finds_what_the_words_say_when_the_vectors_do_not(settings):
    """A memory whose vector is far from the query's (random here) but whose words match is still found."""
    from tests.factories import random_unit_vector

    target = make_memory("alice", "My cat Ziggy hates the vacuum cleaner", embedding=random_unit_vector())
    for index in range(30):
        make_memory("alice", f"Unrelated memory number {index} about the weather", embedding=random_unit_vector())
    dense = query_memories(default_owner("alice"), "Ziggy", limit=5, retrieval=Retrieval.from_settings(hybrid=False))
    hybrid = query_memories(default_owner("alice"), "Ziggy", limit=5, retrieval=Retrieval.from_settings(hybrid=True))
    assert target.pk in [item.memory.pk for item in hybrid.memories]
    assert hybrid.memories[0].memory.pk == target.pk
    assert len(dense.memories) == 5


@pytest.mark.django_db(transaction=True)
def test_the_index_can_be_rebuilt_in_another_language(settings):
    from io import StringIO

    from django.core.management import call_command

    memory = make_memory("alice", "Les enfants jouaient dans les jardins")
    settings.MEMORY_TEXT_SEARCH_CONFIG = "simple"
    out = StringIO()
    call_command("rebuild_text_index", stdout=out)
    assert "'simple'" in out.getvalue()
    assert ids(lexical_search("jardins", default_owner("alice"), EVERYTHING, 5)) == [memory.pk]
    settings.MEMORY_TEXT_SEARCH_CONFIG = "english"
    call_command("rebuild_text_index", stdout=StringIO())
    assert ids(lexical_search("jardins", default_owner("alice"), EVERYTHING, 5)) == [memory.pk]


@pytest.mark.postgres
def test_words_too_common_for_a_user_are_left_out_of_the_match_which_stays_bounded(settings):
    settings.MEMORY_LEXICAL_MAX_DOCUMENTS = 3
    common = [make_memory("alice", f"I drink coffee every morning, day {day}") for day in range(4)]
    zebra = make_memory("alice", "I saw a zebra and had coffee")
    make_memory("bob", "coffee with zebra stripes")  # another user's memories never count
    assert ids(lexical_search("coffee zebra", default_owner("alice"), EVERYTHING, 10)) == [zebra.pk]  # "coffee": 5 > 3
    assert (
        lexical_search("coffee", default_owner("alice"), EVERYTHING, 10) == []
    )  # nothing selective left: dense answers
    settings.MEMORY_LEXICAL_MAX_DOCUMENTS = 5
    found = ids(lexical_search("coffee zebra", default_owner("alice"), EVERYTHING, 10))
    assert found[0] == zebra.pk and set(found) == {zebra.pk, *(memory.pk for memory in common)}


@pytest.mark.postgres
def test_a_users_common_words_are_counted_once_and_a_new_memory_is_found_at_once():
    from memories import text_search

    owner = default_owner("alice")
    for day in range(text_search.REMEMBER_FREQUENCIES_FROM + 6):
        make_memory("alice", f"I drink coffee every morning, day {day}")
    first = ids(lexical_search("coffee please", owner, EVERYTHING, 10))
    remembered = text_search.remembered_frequencies(owner, 500)
    assert remembered == {"coffe": text_search.REMEMBER_FREQUENCIES_FROM + 6}  # 'please' is in none: not remembered
    assert ids(lexical_search("coffee please", owner, EVERYTHING, 10)) == first  # the same answer from the count

    fresh = make_memory("alice", "Please note: I switched to tea, no more coffee")  # a rare word, a moment ago
    assert ids(lexical_search("coffee please", owner, EVERYTHING, 10))[0] == fresh.pk

    text_search.forget_statistics(owner)
    assert text_search.remembered_frequencies(owner, 500) == {}


@pytest.mark.postgres
def test_forgetting_a_user_drops_the_counts_of_their_words():
    from memories import text_search
    from memories.services import forget_user

    owner = default_owner("alice")
    for day in range(text_search.REMEMBER_FREQUENCIES_FROM):
        make_memory("alice", f"My parrot Kiwi said hello on day {day}")
    lexical_search("parrot", owner, EVERYTHING, 5)
    assert text_search.remembered_frequencies(owner, 500)
    forget_user(owner)
    assert text_search.remembered_frequencies(owner, 500) == {}


@pytest.mark.parametrize(
    "query", ["pottery class Tuesday", "the and of", "zebra", "coffee pottery", "xylophone quokka"]
)
def test_lexical_candidates_bring_the_same_ids_and_the_rows_of_both_sides(query):
    """One statement on PostgreSQL: the same ids as lexical_search, and the rows load_results gives for those and
    for the dense side's ids (another user's id brings nothing)."""
    from memories.search import load_results
    from memories.text_search import lexical_candidates

    owner = default_owner("alice")
    mine = [
        make_memory("alice", "I signed up for a pottery class on Tuesday"),
        make_memory("alice", "Coffee with oat milk, no sugar", kind=Memory.Kind.FACT),
        make_memory("alice", "My pottery teacher is called Zebra"),
        make_memory("alice", "Lunch at noon"),
    ]
    theirs = make_memory("bob", "pottery and coffee and zebra")
    old = make_memory("alice", "I used to do pottery on Mondays", superseded_by=mine[0])  # rows as load_results'
    also = {mine[3].pk, theirs.pk, old.pk}
    ids_found, rows = lexical_candidates(query, owner, EVERYTHING, 3, also)
    expected = ids(lexical_search(query, owner, EVERYTHING, 3))
    assert ids_found == expected
    expected_rows = load_results({*also, *expected}, owner)
    assert sorted(rows) == sorted(expected_rows) and theirs.pk not in rows
    for memory_id, memory in rows.items():
        assert (memory.text, memory.kind, memory.extra_sectors, memory.salience) == (
            expected_rows[memory_id].text,
            expected_rows[memory_id].kind,
            expected_rows[memory_id].extra_sectors,
            expected_rows[memory_id].salience,
        )


def test_remembered_counts_survive_threads_reading_writing_and_forgetting_at_once():
    """gthread serves several queries of a process at once: reading a user's counts while another thread writes or
    forgets them must not fail ('dictionary changed size during iteration' without the lock)."""
    import threading
    import time

    from memories import text_search

    owners = [default_owner(f"user-{index}") for index in range(4)]
    failures, stop = [], threading.Event()

    def hammer(kind: int) -> None:
        counter = 0
        while not stop.is_set():
            counter += 1
            owner = owners[counter % len(owners)]
            try:
                if kind == 0:
                    text_search.remember_frequencies(owner, 500, {f"word{counter % 3000}": 100, f"w{counter}": 70})
                elif kind == 1:
                    text_search.remembered_frequencies(owner, 500)
                else:
                    text_search.forget_statistics(owner if counter % 50 else None)
            except Exception as error:  # recorded: the assertion below names it
                failures.append(repr(error))
                return

    threads = [threading.Thread(target=hammer, args=(kind,)) for kind in (0, 0, 1, 1, 2)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join()
    assert failures == []
