"""The typed errors of the embedding service; the API layer maps each to one short HTTP answer."""


class EmbeddingError(Exception):
    """Base class for every error raised by the embedding service."""


class EmbeddingInputError(EmbeddingError, ValueError):
    """The text cannot be embedded (empty, whitespace only, or over the model's input limit).

    Raised before any request is made; the API answers 400.
    """


class EmbeddingProviderError(EmbeddingError):
    """The provider failed after its retries, or answered something unusable; the API answers 503."""


class EmbeddingDimensionsError(EmbeddingProviderError):
    """The provider returned vectors whose length differs from the configured dimensions."""

    def __init__(self, expected: int, received: int, model: str):
        self.expected = expected
        self.received = received
        super().__init__(
            f"embedding model {model!r} returned {received}-dimensional vectors but EMBEDDING_DIMENSIONS "
            f"is {expected}; set EMBEDDING_DIMENSIONS={received} (and re-embed) or pick a model with "
            f"{expected} dimensions"
        )
