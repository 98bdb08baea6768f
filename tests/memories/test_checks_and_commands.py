from io import StringIO

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from memories.checks import assert_ready_to_serve, check_embedding_dimensions
from memories.models import Memory
from testkit.fake_openai import fake_vector
from tests.conftest import reset_embedding_singletons
from tests.factories import make_memory

pytestmark = pytest.mark.django_db


def test_matching_dimensions_pass():
    assert check_embedding_dimensions() == []
    assert_ready_to_serve()


def test_a_provider_with_other_dimensions_fails_start_up(settings):
    settings.EMBEDDING_DIMENSIONS = 768
    reset_embedding_singletons()
    errors = check_embedding_dimensions()
    assert [error.id for error in errors] == ["memories.E001"]
    assert "768-dimensional vectors but the memory schema stores 1536" in errors[0].msg
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
