"""OpenAI embeddings, and any OpenAI-compatible server (Ollama, vLLM, TEI, LM Studio) through `base_url`."""

import base64
import binascii
import logging

import numpy as np
import openai

from embeddings.codec import encode_vector
from embeddings.errors import EmbeddingDimensionsError, EmbeddingProviderError
from embeddings.providers.base import EmbeddingProvider

logger = logging.getLogger(__name__)

# Models that accept the `dimensions` parameter (shortened embeddings).
MODELS_WITH_DIMENSIONS_PARAMETER = ("text-embedding-3-",)


class OpenAIProvider(EmbeddingProvider):
    """Embeddings through the official SDK.

    The SDK retries connection errors, 408/409/429 and 5xx with exponential backoff; each attempt gets
    `total_timeout / (max_retries + 1)` seconds at most (and never more than `request_timeout`), so one call
    is bounded by about `total_timeout` plus the SDK's backoff sleeps. What fails after that becomes one
    EmbeddingProviderError.
    """

    name = "openai"

    def __init__(
        self,
        *,
        model: str,
        dimensions: int,
        api_key: str = "",
        base_url: str = "",
        encoding_format: str = "base64",
        request_timeout: float = 10.0,
        total_timeout: float = 30.0,
        max_retries: int = 2,
        max_batch_inputs: int = 2048,
        max_batch_tokens: int = 300_000,
        **_: object,
    ):
        if encoding_format not in ("base64", "float"):
            raise ValueError(f"EMBEDDING_ENCODING_FORMAT must be 'base64' or 'float', got {encoding_format!r}")
        self.model = model
        self.dimensions = dimensions
        self.base_url = base_url
        self.encoding_format = encoding_format
        self.max_batch_inputs = max_batch_inputs
        self.max_batch_tokens = max_batch_tokens
        # Compatible servers often need no key; the SDK insists on one, so a placeholder is sent.
        self.client = openai.OpenAI(
            api_key=api_key or "unused",
            base_url=base_url or None,
            timeout=min(request_timeout, total_timeout / (max_retries + 1)),
            max_retries=max_retries,
        )
        if base_url:
            self.name = "openai-compatible"

    def embed(self, texts: list[str], timeout: float | None = None) -> list[bytes]:
        options: dict[str, object] = {"model": self.model, "input": texts, "encoding_format": self.encoding_format}
        if self.model.startswith(MODELS_WITH_DIMENSIONS_PARAMETER):
            options["dimensions"] = self.dimensions
        client = self.client if timeout is None else self.client.with_options(timeout=timeout, max_retries=0)
        try:
            response = client.embeddings.create(**options)
        except openai.APIStatusError as error:
            raise EmbeddingProviderError(
                f"embedding provider answered HTTP {error.status_code}: {_short(error.message)}"
            ) from error
        except openai.APIError as error:
            raise EmbeddingProviderError(f"embedding provider unreachable: {_short(str(error))}") from error
        try:
            data = sorted(response.data, key=lambda item: item.index)
            indexes = [item.index for item in data]
            vectors = [self._to_bytes(item.embedding) for item in data]
        except (AttributeError, TypeError, ValueError, binascii.Error) as error:  # HTML, {}, or junk with a 200
            raise EmbeddingProviderError(
                f"embedding provider answered something unusable: {_short(str(error))}"
            ) from error
        if indexes != list(range(len(texts))):
            raise EmbeddingProviderError(f"embedding provider returned {len(data)} vectors for {len(texts)} texts")
        return vectors

    def _to_bytes(self, embedding: object) -> bytes:
        # Servers that ignore encoding_format (Ollama) send floats even when base64 was asked for.
        if isinstance(embedding, str):
            raw = base64.b64decode(embedding)
            received = len(raw) // 4
        else:
            raw = encode_vector(np.asarray(embedding, dtype=np.float32))
            received = len(raw) // 4
        if received != self.dimensions:
            raise EmbeddingDimensionsError(expected=self.dimensions, received=received, model=self.model)
        return raw

    @property
    def cache_namespace(self) -> str:
        return f"{self.name}@{self.base_url}" if self.base_url else self.name

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "base_url": self.base_url or "api.openai.com (default)"}


def _short(message: str, limit: int = 200) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 1] + "…"
