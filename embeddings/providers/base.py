"""The interface every embedding provider implements."""

from abc import ABC, abstractmethod


class EmbeddingProvider(ABC):
    """Turns texts into vectors.

    `name`, `model` and `dimensions` go into every cache key, so two providers that could answer differently
    never share entries. `embed` gets at most `max_batch_inputs` texts and at most `max_batch_tokens`
    (estimated) tokens per call; batching to those limits is the caller's job.
    """

    name: str
    model: str
    dimensions: int
    max_batch_inputs: int = 2048
    max_batch_tokens: int = 300_000

    @abstractmethod
    def embed(self, texts: list[str], timeout: float | None = None) -> list[bytes]:
        """One little-endian float32 vector per text, in input order.

        `timeout` (seconds) is a budget for this call alone: a remote provider then makes one attempt, no
        retries. None: the provider's configured timeouts and retries. Raises EmbeddingProviderError (or
        EmbeddingDimensionsError) when the provider fails or answers with vectors of the wrong size; the caller
        checks the vectors themselves (embeddings.codec.vector_problem) before using or caching any.
        """

    @property
    def cache_namespace(self) -> str:
        """The provider part of cache keys: two endpoints that may answer differently must differ here."""
        return self.name

    def describe(self) -> dict[str, object]:
        return {"provider": self.name, "model": self.model, "dimensions": self.dimensions}
