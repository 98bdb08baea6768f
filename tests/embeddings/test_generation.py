"""generate_embedding(s) through the cache, against a fake OpenAI server driven by the real client."""

import threading

import numpy as np
import pytest

from embeddings.errors import EmbeddingDimensionsError, EmbeddingInputError, EmbeddingProviderError
from embeddings.generation import generate_embedding, generate_embedding_riding, generate_embeddings_batch
from embeddings.statistics import collect_statistics
from testkit.fake_openai import fake_vector


def test_batch_returns_vectors_in_input_order_and_embeds_each_distinct_text_once(fake_openai):
    texts = ["billing", "crm", "billing", "contact details", "crm"]
    vectors = generate_embeddings_batch(texts)
    assert [np.allclose(vector, fake_vector(text, 1536)) for vector, text in zip(vectors, texts, strict=True)] == [
        True
    ] * 5
    assert len(fake_openai.embedding_requests) == 1
    assert fake_openai.embedding_requests[0]["body"]["input"] == ["billing", "crm", "contact details"]


def test_second_batch_is_served_from_the_cache_and_only_misses_reach_the_provider(fake_openai):
    generate_embeddings_batch(["a one", "b two"])
    generate_embeddings_batch(["b two", "c three", "a one"])
    inputs = [request["body"]["input"] for request in fake_openai.embedding_requests]
    assert inputs == [["a one", "b two"], ["c three"]]
    stats = collect_statistics()
    assert (stats.hits, stats.misses, stats.provider_calls) == (2, 3, 2)


def test_riding_keys_are_read_with_the_embedding_and_never_counted(fake_openai):
    from django.core.cache import caches

    generate_embedding("a one")  # a miss, then cached
    caches["embeddings"].set("rider:present", b"token", None)
    vector, riding = generate_embedding_riding("a one", ["rider:present", "rider:absent"])
    assert np.allclose(vector, fake_vector("a one", 1536))
    assert riding == {"rider:present": b"token"}
    vector, riding = generate_embedding_riding("b two", ["rider:present"])  # a miss still rides
    assert np.allclose(vector, fake_vector("b two", 1536)) and riding == {"rider:present": b"token"}
    stats = collect_statistics()
    assert (stats.hits, stats.misses) == (1, 2)  # the embeddings' lookups only


def test_misses_are_chunked_by_the_input_limit(fake_openai, settings):
    settings.EMBEDDING_BATCH_MAX_INPUTS = 3
    texts = [f"text number {index}" for index in range(8)]
    vectors = generate_embeddings_batch(texts)
    assert [len(request["body"]["input"]) for request in fake_openai.embedding_requests] == [3, 3, 2]
    assert all(np.allclose(vector, fake_vector(text, 1536)) for vector, text in zip(vectors, texts, strict=True))


def test_misses_are_chunked_by_the_token_limit(fake_openai, settings):
    settings.EMBEDDING_BATCH_MAX_TOKENS = 25  # each text below is 10 bytes, an upper bound on its tokens
    generate_embeddings_batch(["aaaaaaaaa1", "aaaaaaaaa2", "aaaaaaaaa3", "aaaaaaaaa4", "aaaaaaaaa5"])
    assert [len(request["body"]["input"]) for request in fake_openai.embedding_requests] == [2, 2, 1]


def test_request_uses_model_dimensions_and_base64(fake_openai):
    generate_embedding("hello")
    body = fake_openai.embedding_requests[0]["body"]
    assert body["model"] == "text-embedding-3-small"
    assert body["dimensions"] == 1536
    assert body["encoding_format"] == "base64"


def test_float_encoding_format_and_servers_that_ignore_base64(fake_openai, settings):
    fake_openai.ignore_encoding_format = True  # answers floats although base64 was asked for (Ollama)
    assert np.allclose(generate_embedding("ollama style"), fake_vector("ollama style", 1536))
    settings.EMBEDDING_ENCODING_FORMAT = "float"
    assert np.allclose(generate_embedding("float style"), fake_vector("float style", 1536))
    assert fake_openai.embedding_requests[-1]["body"]["encoding_format"] == "float"


def test_models_without_the_dimensions_parameter_do_not_get_it(fake_openai, settings):
    settings.EMBEDDING_MODEL = "nomic-embed-text"
    generate_embedding("hello")
    assert "dimensions" not in fake_openai.embedding_requests[0]["body"]


def test_wrong_dimensions_fail_with_both_numbers(fake_openai):
    fake_openai.wrong_dimensions = 768
    with pytest.raises(
        EmbeddingDimensionsError, match=r"returned 768-dimensional vectors.*EMBEDDING_DIMENSIONS is 1536"
    ):
        generate_embedding("hello")


@pytest.mark.parametrize(
    ("texts", "message"),
    [([""], "text #0 is empty"), (["ok", "   \n"], "text #1 is empty"), (["ok", 5], "text #1 must be a string")],
)
def test_invalid_text_raises_before_any_request(fake_openai, texts, message):
    with pytest.raises(EmbeddingInputError, match=message):
        generate_embeddings_batch(texts)
    assert fake_openai.embedding_requests == []


def test_over_long_text_raises_before_any_request(fake_openai, settings):
    settings.EMBEDDING_MAX_INPUT_CHARS = 10
    with pytest.raises(EmbeddingInputError, match="11 characters long; the limit is 10"):
        generate_embeddings_batch(["short", "x" * 11])
    assert fake_openai.embedding_requests == []


def test_provider_failures_are_retried_then_become_one_typed_error(fake_openai, settings):
    settings.EMBEDDING_MAX_RETRIES = 2
    fake_openai.fail_next = [500, 503]
    assert np.allclose(generate_embedding("retried"), fake_vector("retried", 1536))
    assert len(fake_openai.embedding_requests) == 3
    fake_openai.fail_next = [500, 500, 500]
    with pytest.raises(EmbeddingProviderError, match="HTTP 500"):
        generate_embedding("fails for good")
    assert collect_statistics().provider_errors == 1


def test_unreachable_provider_is_a_typed_error(settings):
    from tests.conftest import free_port, reset_embedding_singletons

    settings.EMBEDDING_PROVIDER = "openai"
    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{free_port()}/v1"
    settings.EMBEDDING_MAX_RETRIES = 0
    reset_embedding_singletons()
    with pytest.raises(EmbeddingProviderError, match="unreachable"):
        generate_embedding("nobody listens")


def test_concurrent_misses_on_the_same_text_make_one_provider_call(fake_openai):
    fake_openai.delay = 0.3
    barrier = threading.Barrier(8)
    results, errors = [], []

    def worker():
        barrier.wait()
        try:
            results.append(generate_embedding("the same uncached text"))
        except Exception as error:  # pragma: no cover - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 8
    assert len(fake_openai.embedding_requests) == 1
    assert all(np.array_equal(result, results[0]) for result in results)


def test_waiters_get_the_owners_error(fake_openai):
    fake_openai.delay = 0.3
    fake_openai.fail_next = [400]
    barrier = threading.Barrier(4)
    errors = []

    def worker():
        barrier.wait()
        try:
            generate_embedding("doomed text")
        except EmbeddingProviderError as error:
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 4
    assert len(fake_openai.embedding_requests) == 1


def test_the_local_semantic_model_is_the_default_without_keys_or_servers(monkeypatch):
    """A fresh install's settings: all-MiniLM-L6-v2 at 384 dimensions; OpenAI's defaults once a key is set."""
    import importlib

    import memoryplatform.settings as project_settings

    for name in ("EMBEDDING_PROVIDER", "EMBEDDING_MODEL", "EMBEDDING_DIMENSIONS", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    try:
        importlib.reload(project_settings)
        assert (project_settings.EMBEDDING_PROVIDER, project_settings.EMBEDDING_MODEL) == ("local", "all-MiniLM-L6-v2")
        assert project_settings.EMBEDDING_DIMENSIONS == 384
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        importlib.reload(project_settings)
        assert (project_settings.EMBEDDING_PROVIDER, project_settings.EMBEDDING_MODEL) == (
            "openai",
            "text-embedding-3-small",
        )
        assert project_settings.EMBEDDING_DIMENSIONS == 1536
    finally:
        monkeypatch.undo()
        importlib.reload(project_settings)


def test_the_hashing_stand_in_needs_nothing_either():
    vector = generate_embedding("no keys, no servers")
    assert vector.shape == (1536,)
    assert np.isclose(np.linalg.norm(vector), 1.0, atol=1e-5)
    assert collect_statistics().provider["provider"] == "hashing"
