import threading

import numpy as np
import pytest
from django.db import connection

from embeddings.generation import generate_embedding
from memories.models import Memory, MemoryLink
from memories.owners import DEFAULT_SPACE_ID, Owner, OwnerError, default_owner
from memories.search import vector_search
from memories.services import (
    MemoryInputError,
    NewMemory,
    create_memories,
    create_memory,
    forget_user,
    owner_of,
    supersede_memory,
    update_memory_text,
)
from tests.factories import make_memory, near, random_unit_vector

pytestmark = pytest.mark.django_db(transaction=True)


def test_identical_text_reinforces_instead_of_copying():
    first = create_memory(default_owner("alice"), NewMemory("I prefer email over phone calls"))
    again = create_memory(default_owner("alice"), NewMemory("  i prefer EMAIL over phone   calls "))
    assert first.created and not again.created
    assert again.memory.pk == first.memory.pk
    assert Memory.objects.filter(user_id="alice").count() == 1
    assert again.memory.access_count == 1
    assert again.memory.salience > 0.5


def test_near_duplicate_by_cosine_reinforces(settings):
    settings.MEMORY_DEDUPE_SIMILARITY = 0.95
    base = random_unit_vector()
    first = create_memory(default_owner("alice"), NewMemory("has a dog called Rex"), embedding=base)
    close = create_memory(default_owner("alice"), NewMemory("has a dog named Rex"), embedding=near(base, 0.97))
    distinct = create_memory(default_owner("alice"), NewMemory("has a cat called Tom"), embedding=near(base, 0.80))
    assert not close.created and close.memory.pk == first.memory.pk
    assert distinct.created


def test_dedupe_never_crosses_users():
    alice = create_memory(default_owner("alice"), NewMemory("I live in Lisbon"))
    bob = create_memory(default_owner("bob"), NewMemory("I live in Lisbon"))
    assert alice.created and bob.created
    assert alice.memory.pk != bob.memory.pk
    assert bob.memory.user_id == "bob"
    assert Memory.objects.get(pk=alice.memory.pk).access_count == 0


def test_similar_memories_get_linked_within_the_user_only(settings):
    settings.MEMORY_LINK_SIMILARITY = 0.75
    base = random_unit_vector()
    other_user = create_memory(default_owner("bob"), NewMemory("bob's trip"), embedding=near(base, 0.9)).memory
    first = create_memory(default_owner("alice"), NewMemory("trip to Rome in May"), embedding=base).memory
    second = create_memory(
        default_owner("alice"), NewMemory("flight to Rome booked"), embedding=near(base, 0.85)
    ).memory
    links = list(MemoryLink.objects.all())
    assert [(link.from_memory_id, link.to_memory_id, link.user_id) for link in links] == [
        (first.pk, second.pk, "alice")
    ]
    assert links[0].weight == pytest.approx(0.85, abs=1e-3)
    assert other_user.pk not in {links[0].from_memory_id, links[0].to_memory_id}


def test_batch_embeds_once_and_links_a_call_together(fake_openai):
    stored = create_memories(
        default_owner("alice"),
        [NewMemory("my son is called Leo"), NewMemory("I work night shifts"), NewMemory("my son is called Leo")],
        link_together=True,
    )
    assert len(fake_openai.embedding_requests) == 1
    assert [s.created for s in stored] == [True, True, False]
    assert stored[2].memory.pk == stored[0].memory.pk
    assert MemoryLink.objects.filter(reason="same_call").count() == 1


def test_sectors_are_guessed_unless_given():
    guessed = create_memory(default_owner("alice"), NewMemory("I felt really frustrated with the outage")).memory
    assert guessed.sector == "emotional"
    given = create_memory(
        default_owner("alice"), NewMemory("Outage on Monday", sector="episodic", extra_sectors=["emotional"])
    )
    assert given.memory.sectors == ["episodic", "emotional"]


@pytest.mark.parametrize(
    ("new", "message"), [(NewMemory("   "), "non-empty"), (NewMemory("x" * 5000), "limit is 4000")]
)
def test_bad_input(new, message):
    with pytest.raises(MemoryInputError, match=message):
        create_memory(default_owner("alice"), new)


@pytest.mark.parametrize("user_id", ["", "   ", "x" * 129, "nul\x00", None, 7])
def test_an_owner_is_a_usable_user_id_in_a_space(user_id):
    with pytest.raises(OwnerError, match="user_id"):
        Owner(DEFAULT_SPACE_ID, user_id)
    with pytest.raises(MemoryInputError, match="user_id"):
        owner_of(DEFAULT_SPACE_ID, user_id)


def test_a_bare_user_id_is_refused_by_every_write():
    with pytest.raises(TypeError, match="Owner"):
        create_memory("alice", NewMemory("I like tea"))
    with pytest.raises(TypeError, match="Owner"):
        forget_user("alice")


def test_unknown_sector_is_refused():
    with pytest.raises(ValueError, match="unknown sector"):
        create_memory(default_owner("alice"), NewMemory("text", sector="gossip"))


def test_update_text_re_embeds():
    memory = create_memory(default_owner("alice"), NewMemory("likes tea")).memory
    update_memory_text(memory, "likes coffee")
    memory.refresh_from_db()
    assert memory.text == "likes coffee"
    assert np.allclose(memory.embedding, generate_embedding("likes coffee"))


def test_supersede_keeps_history_and_hides_the_old_fact():
    old = create_memory(default_owner("alice"), NewMemory("lives in Paris")).memory
    new = create_memory(default_owner("alice"), NewMemory("moved to Berlin")).memory
    supersede_memory(old, new)
    old.refresh_from_db()
    assert old.superseded_by_id == new.pk and old.valid_until is not None
    assert old.pk not in {item.memory.pk for item in vector_search(old.embedding, default_owner("alice"), limit=10)}


def test_forget_user_deletes_everything_of_that_user_only():
    a1 = make_memory("alice", "one")
    a2 = make_memory("alice", "two")
    b1 = make_memory("bob", "three")
    MemoryLink.objects.create(from_memory=a1, to_memory=a2, weight=0.5, user_id="alice")
    counts = forget_user(default_owner("alice"))
    assert counts["memories"] == 2 and counts["links"] == 1
    assert list(Memory.objects.values_list("pk", flat=True)) == [b1.pk]
    assert forget_user(default_owner("alice"))["memories"] == 0


def test_concurrent_stores_of_the_same_fact_keep_one_copy():
    if connection.vendor == "sqlite":
        connection.close()  # each thread opens its own connection to the file database
    barrier = threading.Barrier(6)
    errors = []

    def store():
        from django.db import connection as thread_connection

        barrier.wait()
        try:
            create_memory(default_owner("alice"), NewMemory("my favourite colour is green"))
        except Exception as error:  # pragma: no cover - reported by the assertion below
            errors.append(error)
        finally:
            thread_connection.close()

    threads = [threading.Thread(target=store) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    memory = Memory.objects.get(user_id="alice")
    assert memory.access_count == 5


def test_deleting_a_newer_fact_revives_the_older_unless_it_is_said_again():
    from memories.services import delete_memory

    owner = default_owner("alice")
    paris = create_memory(owner, NewMemory("I live in Paris")).memory
    lyon = create_memory(owner, NewMemory("I moved to Lyon")).memory
    supersede_memory(paris, lyon)
    again = create_memory(owner, NewMemory("I live in Paris")).memory  # said again: a new current memory
    assert again.pk != paris.pk
    delete_memory(lyon)
    paris.refresh_from_db()
    assert paris.superseded_by_id == again.pk  # the current twin supersedes it; no two current copies
    other = create_memory(owner, NewMemory("I work at the bakery")).memory
    newer = create_memory(owner, NewMemory("I work at the library")).memory
    supersede_memory(other, newer)
    delete_memory(newer)
    other.refresh_from_db()
    assert other.superseded_by_id is None and not MemoryLink.objects.filter(to_memory_id=newer.pk).exists()
