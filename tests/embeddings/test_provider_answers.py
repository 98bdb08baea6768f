"""A provider's answer is checked before anything is cached or stored: a bad day at the provider costs errors,
never a poisoned cache or a memory no query can find."""

import time

import numpy as np
import pytest

from embeddings.codec import encode_vector, vector_problem
from embeddings.errors import EmbeddingProviderError
from embeddings.generation import cache_key_for, cached_embeddings, generate_embedding, generate_embeddings_batch
from embeddings.statistics import collect_statistics

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ("nan", "NaN or infinity"),
        ("zeros", "all zeros"),
        ("html", "unusable"),
        ("empty", "unusable"),
        ("missing_one", "1 vectors for 2 texts"),
    ],
)
def test_a_broken_answer_is_an_error_and_nothing_is_cached(fake_openai, broken, message):
    fake_openai.broken_next = [broken]
    with pytest.raises(EmbeddingProviderError, match=message):
        generate_embeddings_batch(["the first text", "the second text"])
    assert cached_embeddings(["the first text", "the second text"]) == {}
    assert collect_statistics().provider_errors == 1
    vectors = generate_embeddings_batch(["the first text", "the second text"])  # the provider recovered
    assert all(not vector_problem(encode_vector(vector), len(vector)) for vector in vectors)
    assert set(cached_embeddings(["the first text", "the second text"])) == {"the first text", "the second text"}


@pytest.mark.parametrize("status", [429, 500, 503])
def test_error_statuses_are_provider_errors(fake_openai, status):
    fake_openai.fail_next = [status]
    with pytest.raises(EmbeddingProviderError, match=f"HTTP {status}"):
        generate_embedding("anything")


def test_a_poisoned_cache_entry_is_discarded_and_embedded_again(fake_openai, settings):
    """An entry an older version cached (or anyone with write access to Redis wrote) is never served."""
    from embeddings.cache import get_embedding_cache

    poisoned = np.full(settings.EMBEDDING_DIMENSIONS, np.nan, dtype=np.float32)
    get_embedding_cache().store({cache_key_for("poisoned"): encode_vector(poisoned)})
    vector = generate_embedding("poisoned")
    assert np.isfinite(vector).all() and len(fake_openai.embedding_requests) == 1


def test_a_deadline_gives_the_provider_one_short_attempt(fake_openai):
    fake_openai.delay = 3.0
    started = time.monotonic()
    with pytest.raises(EmbeddingProviderError):
        generate_embedding("slow text", deadline=time.monotonic() + 0.5)
    assert time.monotonic() - started < 1.5
    assert len(fake_openai.embedding_requests) == 1, "no retry within a budget"
    with pytest.raises(EmbeddingProviderError, match="no time left"):
        generate_embedding("another text", deadline=time.monotonic() - 1)


def test_vector_problem_names_each_defect():
    good = encode_vector(np.ones(4, dtype=np.float32))
    assert vector_problem(good, 4) == ""
    assert vector_problem(good, 5) == "expected 20 bytes, got 16"
    assert "expected" in vector_problem("not bytes", 4)
    assert (
        vector_problem(encode_vector(np.array([1, np.inf, 0, 0], dtype=np.float32)), 4) == "it contains NaN or infinity"
    )
    assert vector_problem(encode_vector(np.zeros(4, dtype=np.float32)), 4) == "it is all zeros"
