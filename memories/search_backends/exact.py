"""Exact cosine search in numpy over the user's rows (the embedded stack)."""

import numpy as np

from memories.models import Memory
from memories.owners import Owner
from memories.search_backends.base import Scope, SearchBackend, VectorMatch


class ExactNumpySearch(SearchBackend):
    def search(self, embedding: np.ndarray, owner: Owner, scope: Scope, limit: int) -> list[VectorMatch]:
        rows = list(
            Memory.objects.for_user(owner).current().values_list("id", "sector", "extra_sectors", "kind", "embedding")
        )
        if scope.sectors or scope.kinds:
            rows = [row for row in rows if scope.admits(row[1], row[2], row[3])]
        if not rows:
            return []
        ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        matrix = np.vstack([row[4] for row in rows]).astype(np.float32, copy=False)
        similarities = cosine_similarities(matrix, np.asarray(embedding, dtype=np.float32))
        # Most similar first, ties by id: the same order PostgreSQL gives (ORDER BY distance, id).
        order = np.lexsort((ids, -similarities))[:limit]
        return [VectorMatch(memory_id=int(ids[i]), similarity=float(similarities[i])) for i in order]

    def search_many(self, embeddings, owner: Owner, limit: int) -> list[list[VectorMatch]]:
        if not embeddings:
            return []
        rows = list(Memory.objects.for_user(owner).current().values_list("id", "embedding"))
        if not rows:
            return [[] for _ in embeddings]
        ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        matrix = np.vstack([row[1] for row in rows]).astype(np.float32, copy=False)
        results = []
        for embedding in embeddings:
            similarities = cosine_similarities(matrix, np.asarray(embedding, dtype=np.float32))
            order = np.lexsort((ids, -similarities))[:limit]
            results.append([VectorMatch(memory_id=int(ids[i]), similarity=float(similarities[i])) for i in order])
        return results


def cosine_similarities(matrix: np.ndarray, query: np.ndarray, row_norms: np.ndarray | None = None) -> np.ndarray:
    """Each row's cosine with `query` (0 for a zero vector); `row_norms` when the caller keeps them."""
    norms = (np.linalg.norm(matrix, axis=1) if row_norms is None else row_norms) * (np.linalg.norm(query) or 1.0)
    norms[norms == 0] = 1.0
    return (matrix @ query) / norms
