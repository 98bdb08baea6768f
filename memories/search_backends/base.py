from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VectorMatch:
    memory_id: int
    similarity: float  # cosine similarity, -1..1


class SearchBackend(ABC):
    """Nearest memories of ONE user by cosine similarity; superseded memories are never returned."""

    @abstractmethod
    def search(
        self, embedding: np.ndarray, user_id: str, sectors: Sequence[str] | None, limit: int
    ) -> list[VectorMatch]:
        """Up to `limit` matches, most similar first (ties broken by memory id, ascending)."""

    def search_many(self, embeddings: Sequence[np.ndarray], user_id: str, limit: int) -> list[list[VectorMatch]]:
        """`search` for several query vectors of one user (every sector); backends answer in one go."""
        return [self.search(embedding, user_id, None, limit) for embedding in embeddings]
