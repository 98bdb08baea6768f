from io import StringIO

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from memories.checks import assert_ready_to_serve, check_embedding_dimensions, stored_dimensions
from memories.models import Memory
from memories.owners import default_owner
from testkit.fake_openai import fake_vector
from tests.conftest import reset_embedding_singletons
from tests.factories import make_memory

pytestmark = pytest.mark.django_db


def test_matching_dimensions_pass():
    assert check_embedding_dimensions() == []
    assert_ready_to_serve()


def test_a_provider_with_other_dimensions_than_the_stored_memories_fails_start_up(settings):
    make_memory("alice", "a memory of 1,536 dimensions")
    assert stored_dimensions() == 1536
    settings.EMBEDDING_DIMENSIONS = 768
    reset_embedding_singletons()
    errors = check_embedding_dimensions()
    assert [error.id for error in errors] == ["memories.E001"]
    assert "768-dimensional vectors but the memories stored hold 1536" in errors[0].msg
    assert "reembed_memories --dimensions 768" in errors[0].hint
    with pytest.raises(ImproperlyConfigured, match=r"memories\.E001"):
        assert_ready_to_serve()


def test_reembed_memories_after_a_model_change(fake_openai):
    memories = [make_memory("alice", f"fact {index}") for index in range(5)]
    out = StringIO()
    call_command("reembed_memories", "--batch-size", "2", stdout=out)
    output = out.getvalue()
    assert "Re-embedding 5 memories with text-embedding-3-small" in output
    assert "2/5 (40%)" in output and "5/5 (100%)" in output
    assert [len(request["body"]["input"]) for request in fake_openai.embedding_requests] == [2, 2, 1]
    for memory in memories:
        memory.refresh_from_db()
        assert memory.embedding_model == "text-embedding-3-small"
        assert np.allclose(memory.embedding, fake_vector(memory.text, 1536), atol=1e-6)
    out = StringIO()
    call_command("reembed_memories", stdout=out)
    assert "Nothing to re-embed" in out.getvalue()
    assert Memory.objects.count() == 5


def test_reembed_stops_with_a_clear_error(fake_openai):
    make_memory("alice", "fact")
    fake_openai.fail_next = [500]
    with pytest.raises(CommandError, match="stopped after 0 of 1"):
        call_command("reembed_memories", stdout=StringIO())


@pytest.fixture
def restored_vector_column(settings):
    """The schema outlives a test's data: whatever happens, the column is back at the suite's size afterwards."""
    from memories import vector_resize

    yield
    settings.EMBEDDING_DIMENSIONS = 1536
    reset_embedding_singletons()
    if stored_dimensions() not in (None, 1536) or vector_resize.has_next_column():
        Memory.objects.all().delete()  # the test's data: nothing to embed on the way back
        call_command("reembed_memories", "--dimensions", "1536", "--swap", stdout=StringIO())


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("restored_vector_column")
def test_moving_to_a_model_of_another_size_is_resumable_and_never_pads(settings, fake_openai):
    """1,536 -> 768 dimensions: a second column filled while serving (stopped half-way and resumed), then the
    swap; the new vectors are the new model's own, not padded or cut old ones."""
    from memories import vector_resize
    from memories.search import vector_search

    texts = [f"fact number {index}" for index in range(7)]
    memories = [make_memory("alice", text) for text in texts]
    settings.EMBEDDING_DIMENSIONS = 768
    reset_embedding_singletons()
    fake_openai.fail_next = [0, 500]  # the second batch fails: the run stops, what was done stays
    with pytest.raises(CommandError, match="run the command again to go on"):
        call_command("reembed_memories", "--dimensions", "768", "--batch-size", "3", stdout=StringIO())
    assert vector_resize.remaining() == 4
    assert stored_dimensions() == 1536 and check_embedding_dimensions(), "still the old column until the swap"
    out = StringIO()
    call_command("reembed_memories", "--dimensions", "768", "--batch-size", "3", stdout=out)
    assert "Embedding 4 memories" in out.getvalue() and "Stop the web and worker processes" in out.getvalue()
    call_command("reembed_memories", "--dimensions", "768", "--swap", stdout=StringIO())
    assert stored_dimensions() == 768 and check_embedding_dimensions() == []
    assert not vector_resize.has_next_column()
    for memory in memories:
        memory.refresh_from_db()
        assert np.allclose(memory.embedding, fake_vector(memory.text, 768), atol=1e-6)
    assert (
        vector_search(fake_vector("fact number 3", 768), default_owner("alice"), limit=1)[0].memory.text
        == "fact number 3"
    )
    out = StringIO()
    call_command("reembed_memories", "--dimensions", "768", stdout=out)
    assert "Nothing to do" in out.getvalue()
