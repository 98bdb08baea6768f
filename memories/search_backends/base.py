from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from memories.owners import Owner


@dataclass(frozen=True)
class VectorMatch:
    memory_id: int
    similarity: float  # cosine similarity, -1..1


@dataclass(frozen=True)
class Scope:
    """Which of a user's memories a search looks at: any of `sectors` (primary or additional) and any of `kinds`;
    None for no restriction."""

    sectors: tuple[str, ...] | None = None
    kinds: tuple[str, ...] | None = None

    @classmethod
    def of(cls, sectors: Sequence[str] | None = None, kinds: Sequence[str] | None = None) -> "Scope":
        return cls(tuple(sectors) if sectors else None, tuple(kinds) if kinds else None)

    def admits(self, sector: str, extra_sectors: Sequence[str], kind: str) -> bool:
        in_sectors = not self.sectors or sector in self.sectors or bool(set(self.sectors) & set(extra_sectors or ()))
        return in_sectors and (not self.kinds or kind in self.kinds)


EVERYTHING = Scope()


class SearchBackend(ABC):
    """Nearest memories of ONE user by cosine similarity; superseded memories are never returned."""

    @abstractmethod
    def search(self, embedding: np.ndarray, owner: Owner, scope: Scope, limit: int) -> list[VectorMatch]:
        """Up to `limit` matches within `scope`, most similar first (ties broken by memory id, ascending)."""

    def search_many(self, embeddings: Sequence[np.ndarray], owner: Owner, limit: int) -> list[list[VectorMatch]]:
        """`search` for several query vectors of one user (all their memories); backends answer in one go."""
        return [self.search(embedding, owner, EVERYTHING, limit) for embedding in embeddings]
