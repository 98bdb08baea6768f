"""pgvector search (the production stack), with the plan chosen by how many memories the user has.

Two plans, both filtered by user (see docs/benchmarks.md for the measurements behind the rule):
- exact: the user's rows through the (user_id, superseded_by) index, distances computed for all of them
  (a MATERIALIZED CTE keeps the planner from walking the HNSW index and filtering afterwards, which loses
  recall for small users). Exact, and fast while the user has few memories.
- hnsw: the HNSW index with iterative scans (pgvector >= 0.8, `hnsw.iterative_scan = relaxed_order`), which
  keeps scanning until enough rows pass the user filter. Approximate; used for users with at least
  MEMORY_HNSW_MIN_USER_MEMORIES memories, where an exact scan gets slow.
"""

import time
import weakref
from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np
import psycopg
from django.conf import settings
from django.db import connection, transaction
from pgvector.psycopg import register_vector

from memories.models import Memory
from memories.search_backends.base import SearchBackend, VectorMatch

TABLE = Memory._meta.db_table
PLAN_CACHE_SIZE = 100_000
_plans: dict[tuple[str, int], tuple[str, float]] = {}


_registered: "weakref.WeakSet" = weakref.WeakSet()


@contextmanager
def vector_cursor():
    """A server-side-binding psycopg cursor on Django's connection, with pgvector's binary adapters.

    Query vectors then travel as 6 KB of float32 instead of ~20 KB of decimal text that Python formats and
    PostgreSQL parses: the initiation's eight-vector search went from 19 ms to 7 ms (docs/benchmarks.md).
    """
    connection.ensure_connection()
    raw = connection.connection
    if raw not in _registered:
        register_vector(raw)
        _registered.add(raw)
    with psycopg.Cursor(raw) as cursor:
        yield cursor


class PgVectorSearch(SearchBackend):
    def search(
        self, embedding: np.ndarray, user_id: str, sectors: Sequence[str] | None, limit: int
    ) -> list[VectorMatch]:
        plan = self.choose_plan(user_id)
        return self.search_with_plan(plan, embedding, user_id, sectors, limit)

    def search_many(self, embeddings, user_id: str, limit: int) -> list[list[VectorMatch]]:
        """All query vectors in one statement on the exact plan (the user's rows are read once)."""
        if not embeddings:
            return []
        if self.choose_plan(user_id) != "exact":
            return super().search_many(embeddings, user_id, limit)
        vectors = [np.asarray(embedding, dtype=np.float32) for embedding in embeddings]
        sql = (
            f"WITH candidates AS MATERIALIZED (SELECT id, embedding FROM {TABLE} "
            "WHERE user_id = %s AND superseded_by_id IS NULL), "
            "queries AS (SELECT position, query FROM unnest(%s::vector[]) WITH ORDINALITY "
            "AS given(query, position)) "
            "SELECT queries.position, best.id, best.distance FROM queries CROSS JOIN LATERAL "
            "(SELECT id, embedding <=> queries.query AS distance FROM candidates ORDER BY distance, id LIMIT %s) best "
            "ORDER BY queries.position, best.distance, best.id"
        )
        results: list[list[VectorMatch]] = [[] for _ in embeddings]
        with vector_cursor() as cursor:
            cursor.execute(sql, [user_id, vectors, limit], binary=True)
            for position, memory_id, distance in cursor.fetchall():
                results[position - 1].append(VectorMatch(memory_id=memory_id, similarity=1.0 - float(distance)))
        return results

    @staticmethod
    def choose_plan(user_id: str) -> str:
        """ "hnsw" for users with at least MEMORY_HNSW_MIN_USER_MEMORIES current memories, else "exact".

        The answer is remembered per process for MEMORY_PLAN_CACHE_SECONDS: the count costs ~20 ms for a heavy
        user (index-only scan up to the threshold), and a user who crosses the threshold is served by the
        other plan a minute later at worst, which changes speed, not results.
        """
        threshold = settings.MEMORY_HNSW_MIN_USER_MEMORIES
        if threshold <= 0:
            return "exact"
        now = time.monotonic()
        remembered = _plans.get((user_id, threshold))
        if remembered is not None and remembered[1] > now:
            return remembered[0]
        with connection.cursor() as cursor:
            # Counts at most `threshold` rows (index-only scan): cheap for every user, heavy ones included.
            cursor.execute(
                f"SELECT COUNT(*) FROM (SELECT 1 FROM {TABLE} WHERE user_id = %s AND superseded_by_id IS NULL "
                "LIMIT %s) AS capped",
                [user_id, threshold],
            )
            count = cursor.fetchone()[0]
        plan = "hnsw" if count >= threshold else "exact"
        if len(_plans) >= PLAN_CACHE_SIZE:
            _plans.clear()
        _plans[(user_id, threshold)] = (plan, now + settings.MEMORY_PLAN_CACHE_SECONDS)
        return plan

    def search_with_plan(
        self, plan: str, embedding: np.ndarray, user_id: str, sectors: Sequence[str] | None, limit: int
    ) -> list[VectorMatch]:
        vector = np.asarray(embedding, dtype=np.float32)
        sector_sql, sector_params = "", []
        if sectors:
            sector_sql = " AND (sector = ANY(%s) OR extra_sectors ?| %s)"
            sector_params = [list(sectors), list(sectors)]
        if plan == "exact":
            sql = (
                f"WITH candidates AS MATERIALIZED (SELECT id, embedding FROM {TABLE} "
                f"WHERE user_id = %s AND superseded_by_id IS NULL{sector_sql}) "
                "SELECT id, embedding <=> %s AS distance FROM candidates ORDER BY distance, id LIMIT %s"
            )
            params = [user_id, *sector_params, vector, limit]
            with vector_cursor() as cursor:
                cursor.execute(sql, params, binary=True)
                rows = cursor.fetchall()
        else:
            sql = (
                f"SELECT id, embedding <=> %s AS distance FROM {TABLE} "
                f"WHERE user_id = %s AND superseded_by_id IS NULL{sector_sql} ORDER BY distance LIMIT %s"
            )
            params = [vector, user_id, *sector_params, limit]
            with transaction.atomic(), vector_cursor() as cursor:
                cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
                cursor.execute(f"SET LOCAL hnsw.ef_search = {int(max(settings.MEMORY_HNSW_EF_SEARCH, limit))}")
                # With a selective user filter the planner prefers the btree plus a sort; this plan exists to
                # walk the HNSW index instead. (JIT, which its cost estimate would trigger, is off for the
                # whole connection: see DATABASES in settings.)
                cursor.execute("SET LOCAL enable_sort = off")
                cursor.execute(sql, params, binary=True)
                rows = cursor.fetchall()
            rows.sort(key=lambda row: (row[1], row[0]))  # relaxed_order may return slightly out of order
        return [VectorMatch(memory_id=row[0], similarity=1.0 - float(row[1])) for row in rows]
