"""generate_embedding and generate_embeddings_batch: every text the platform embeds goes through here.

Cache first (one counted multi-get for the whole batch), then each distinct missing text is embedded once,
in as few provider requests as the provider's limits allow, written back in one multi-set, and the vectors
are returned in input order.
"""

import logging
import time
from collections.abc import Iterable, Sequence

import numpy as np
from django.conf import settings

from embeddings.cache import get_embedding_cache
from embeddings.codec import decode_vector, vector_problem
from embeddings.errors import EmbeddingInputError, EmbeddingProviderError
from embeddings.keys import embedding_cache_key
from embeddings.latency import latency_counters
from embeddings.providers import EmbeddingProvider, get_provider
from embeddings.singleflight import SingleFlight

logger = logging.getLogger(__name__)

_single_flight = SingleFlight()


def validate_text(text: object, position: int | None = None) -> str:
    """The text itself, or EmbeddingInputError when it cannot be embedded."""
    where = "" if position is None else f" #{position}"
    if not isinstance(text, str):
        raise EmbeddingInputError(f"text{where} must be a string, got {type(text).__name__}")
    if not text.strip():
        raise EmbeddingInputError(f"text{where} is empty")
    limit = settings.EMBEDDING_MAX_INPUT_CHARS
    if len(text) > limit:
        raise EmbeddingInputError(f"text{where} is {len(text)} characters long; the limit is {limit}")
    return text


def estimate_tokens(text: str) -> int:
    """An upper bound on the token count: byte-level BPE never makes more tokens than UTF-8 bytes."""
    return len(text.encode())


def cache_key_for(text: str, provider: EmbeddingProvider | None = None) -> str:
    provider = provider or get_provider()
    return embedding_cache_key(provider.cache_namespace, provider.model, provider.dimensions, text)


def generate_embedding(text: str, deadline: float | None = None) -> np.ndarray:
    """The embedding of one text (float32, the provider's dimensions), through the cache."""
    return generate_embeddings_batch([text], deadline=deadline)[0]


def generate_embedding_riding(
    text: str, riders: Sequence[str], deadline: float | None = None
) -> tuple[np.ndarray, dict[str, bytes] | None]:
    """generate_embedding, and the values of `riders` (other keys of the embedding cache) read in the cache's
    same round trip: a round trip fewer for memories.caller_cache's tokens. The values are None when the cache
    could not be read."""
    vectors, riding = _embeddings([text], deadline, riders)
    return vectors[0], riding


def cached_embeddings(texts: Iterable[str]) -> dict[str, np.ndarray]:
    """The embeddings of `texts` that are in the cache now, by text; never calls the provider.

    For paths that must not wait on a provider (the conversation initiation while the phone rings) and for
    telling what is warm. Not counted as hits or misses: these are not lookups a provider call could replace.
    """
    provider = get_provider()
    keys = {cache_key_for(text, provider): text for text in texts if isinstance(text, str)}
    found = get_embedding_cache().lookup(keys, count=False)
    return {
        keys[key]: decode_vector(value, provider.dimensions)
        for key, value in found.items()
        if not vector_problem(value, provider.dimensions)
    }


def generate_embeddings_batch(texts: Sequence[str], deadline: float | None = None) -> list[np.ndarray]:
    """One float32 vector per text, in input order.

    `deadline` (a `time.monotonic()` value) is for paths with a time budget (the memory tool while the caller
    waits): the provider gets what is left of it, without retries, and running out is an
    EmbeddingProviderError. Without one, the provider's own timeouts and retries apply (background work).

    Raises EmbeddingInputError (before any request) for an empty or over-long text, and
    EmbeddingProviderError when the provider fails after its retries or answers something unusable.
    """
    return _embeddings(texts, deadline)[0]


def _embeddings(
    texts: Sequence[str], deadline: float | None, riders: Sequence[str] = ()
) -> tuple[list[np.ndarray], dict[str, bytes] | None]:
    texts = [validate_text(text, position) for position, text in enumerate(texts)]
    if not texts:
        return [], {}
    provider = get_provider()
    keys = [cache_key_for(text, provider) for text in texts]
    distinct = dict(zip(keys, texts, strict=True))
    cache = get_embedding_cache()

    vectors: dict[str, bytes] = {}
    found = cache.lookup_riding(distinct, riders) if riders else cache.lookup(distinct)
    riding = None if found is None else {key: found[key] for key in riders if key in found}
    for key, value in (found or {}).items():
        if key not in distinct:
            continue  # a rider
        if problem := vector_problem(value, provider.dimensions):
            logger.warning("discarding a malformed embedding cache entry", extra={"key": key, "problem": problem})
        else:
            vectors[key] = value
    missing = {key: text for key, text in distinct.items() if key not in vectors}
    if missing:
        vectors.update(_embed_missing(provider, missing, deadline))
    return [decode_vector(vectors[key], provider.dimensions) for key in keys], riding


def _embed_missing(provider: EmbeddingProvider, missing: dict[str, str], deadline: float | None) -> dict[str, bytes]:
    owned, waiting = _single_flight.claim(missing)
    results: dict[str, bytes] = {}
    try:
        for chunk in plan_requests([(key, missing[key]) for key in owned], provider):
            results.update(_call_provider(provider, chunk, deadline))
    except BaseException as error:
        _single_flight.fail([key for key in owned if key not in results], error)
        get_embedding_cache().store(results)
        _single_flight.resolve(results)
        raise
    get_embedding_cache().store(results)
    _single_flight.resolve(results)
    for key, call in waiting.items():
        timeout = settings.EMBEDDING_TOTAL_TIMEOUT + 5 if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            results[key] = _single_flight.wait(call, timeout=timeout)
        except TimeoutError as error:
            raise EmbeddingProviderError("the embedding provider did not answer in time") from error
    return results


def plan_requests(items: list[tuple[str, str]], provider: EmbeddingProvider) -> list[list[tuple[str, str]]]:
    """Split (key, text) pairs into as few requests as the provider's input and token limits allow."""
    requests: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    tokens = 0
    for key, text in items:
        size = estimate_tokens(text)
        if current and (len(current) >= provider.max_batch_inputs or tokens + size > provider.max_batch_tokens):
            requests.append(current)
            current, tokens = [], 0
        current.append((key, text))
        tokens += size
    if current:
        requests.append(current)
    return requests


def _call_provider(
    provider: EmbeddingProvider, chunk: list[tuple[str, str]], deadline: float | None
) -> dict[str, bytes]:
    """One provider request, its answer checked before anything is cached: one usable vector per text."""
    cache = get_embedding_cache()
    started = time.perf_counter()
    try:
        timeout = None
        if deadline is not None:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                raise EmbeddingProviderError("no time left to ask the embedding provider")
        vectors = provider.embed([text for _, text in chunk], timeout=timeout)
        if len(vectors) != len(chunk):
            raise EmbeddingProviderError(f"embedding provider returned {len(vectors)} vectors for {len(chunk)} texts")
        for position, vector in enumerate(vectors):
            if problem := vector_problem(vector, provider.dimensions):
                raise EmbeddingProviderError(f"embedding provider returned an unusable vector #{position}: {problem}")
    except EmbeddingProviderError:
        cache.add_counters({"provider_errors": 1, "provider_calls": 1})
        raise
    elapsed = time.perf_counter() - started
    cache.add_counters({"provider_calls": 1, "provider_texts": len(chunk), **latency_counters(elapsed)})
    return {key: vector for (key, _), vector in zip(chunk, vectors, strict=True)}
