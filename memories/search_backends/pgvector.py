"""pgvector search (the production stack), with the plan chosen by how many memories the user has.

Two plans, both filtered by user (see docs/benchmarks.md for the measurements behind the rule):
- exact: the user's rows through the (user_id, superseded_by) index, distances computed for all of them
  (a MATERIALIZED CTE keeps the planner from walking the HNSW index and filtering afterwards, which loses
  recall for small users). Exact, and fast while the user has few memories.
- hnsw: the HNSW index with iterative scans (pgvector >= 0.8, `hnsw.iterative_scan = relaxed_order`), which
  keeps scanning until enough rows pass the user filter. Approximate; used for users with at least
  MEMORY_HNSW_MIN_USER_MEMORIES memories, where an exact scan gets slow.
- dedicated: the user's own partial HNSW index over halfvec (memories.user_indexes), which holds nothing to
  filter out: a short walk (MEMORY_USER_INDEX_EF_SEARCH) finds the neighbours, re-ranked by exact distance.
  Used for users whose dedicated index is ready.
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

from memories.models import EMBEDDING_DIMENSIONS, Memory, UserVectorIndex
from memories.search_backends.base import SearchBackend, VectorMatch

TABLE = Memory._meta.db_table
INDEX_TABLE = UserVectorIndex._meta.db_table
PLAN_CACHE_SIZE = 100_000
_plans: dict[tuple[str, int], tuple[str, float]] = {}


_registered: "weakref.WeakSet" = weakref.WeakSet()
# Session-level hnsw.ef_search last set on each connection by the dedicated plan (outside transactions only).
_session_ef_search: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


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
        """ "dedicated" for users with a ready index of their own, "hnsw" for users with at least
        MEMORY_HNSW_MIN_USER_MEMORIES current memories, else "exact".

        The answer is remembered per process for MEMORY_PLAN_CACHE_SECONDS: the count costs ~20 ms for a heavy
        user (index-only scan up to the threshold), and a user who crosses the threshold, or whose index
        becomes ready, is served by the other plan a minute later at worst, which changes speed, not results.
        """
        threshold = settings.MEMORY_HNSW_MIN_USER_MEMORIES
        if threshold <= 0:
            return "exact"
        now = time.monotonic()
        remembered = _plans.get((user_id, threshold))
        if remembered is not None and remembered[1] > now:
            return remembered[0]
        with connection.cursor() as cursor:
            # One round trip; the count reads at most `threshold` rows (index-only scan), cheap for every user.
            cursor.execute(
                f"SELECT EXISTS (SELECT 1 FROM {INDEX_TABLE} WHERE user_id = %s AND status = %s), "
                f"(SELECT COUNT(*) FROM (SELECT 1 FROM {TABLE} WHERE user_id = %s AND superseded_by_id IS NULL "
                "LIMIT %s) AS capped)",
                [user_id, UserVectorIndex.Status.READY, user_id, threshold],
            )
            dedicated, count = cursor.fetchone()
        plan = "dedicated" if dedicated else "hnsw" if count >= threshold else "exact"
        if len(_plans) >= PLAN_CACHE_SIZE:
            _plans.clear()
        _plans[(user_id, threshold)] = (plan, now + settings.MEMORY_PLAN_CACHE_SECONDS)
        return plan

    @staticmethod
    def _dedicated_search(vector: np.ndarray, user_id: str, sectors: Sequence[str] | None, limit: int) -> list:
        """The dedicated plan in one round trip (outside transactions): no BEGIN, SET LOCAL, COMMIT.

        Its two settings are set for the session instead, once per connection and value: they only affect
        HNSW scans, and the shared plan sets its own for its transaction. enable_sort is not needed: no other
        index serves the halfvec ORDER BY, and sorting the user's rows (a dedicated index exists only for users
        of thousands of memories) costs the planner far more than the walk. A profile under load showed the
        three extra round trips as a fifth of the worker's time (docs/benchmarks.md).
        """
        ef_search = int(max(settings.MEMORY_USER_INDEX_EF_SEARCH, limit))
        sql, params = hnsw_query(vector, user_id, sectors, limit, dedicated=True)
        with vector_cursor() as cursor:
            raw = connection.connection
            if _session_ef_search.get(raw) != ef_search:
                cursor.execute(f"SET hnsw.iterative_scan = relaxed_order; SET hnsw.ef_search = {ef_search}")
                _session_ef_search[raw] = ef_search
            cursor.execute(sql, params, binary=True, prepare=False)  # unprepared: see search_with_plan
            return cursor.fetchall()

    @staticmethod
    def forget_plans(user_id: str | None = None) -> None:
        """Drop this process' remembered plans (of one user, or all): the next search decides afresh."""
        if user_id is None:
            _plans.clear()
            return
        for key in [key for key in _plans if key[0] == user_id]:
            del _plans[key]

    def search_with_plan(
        self, plan: str, embedding: np.ndarray, user_id: str, sectors: Sequence[str] | None, limit: int
    ) -> list[VectorMatch]:
        vector = np.asarray(embedding, dtype=np.float32)
        if plan == "exact":
            sector_sql, sector_params = sector_filter(sectors)
            sql = (
                f"WITH candidates AS MATERIALIZED (SELECT id, embedding FROM {TABLE} "
                f"WHERE user_id = %s AND superseded_by_id IS NULL{sector_sql}) "
                "SELECT id, embedding <=> %s AS distance FROM candidates ORDER BY distance, id LIMIT %s"
            )
            params = [user_id, *sector_params, vector, limit]
            with vector_cursor() as cursor:
                cursor.execute(sql, params, binary=True)
                rows = cursor.fetchall()
        elif plan == "dedicated" and not connection.in_atomic_block:
            rows = self._dedicated_search(vector, user_id, sectors, limit)
        else:
            sql, params = hnsw_query(vector, user_id, sectors, limit, dedicated=plan == "dedicated")
            ef_search = settings.MEMORY_USER_INDEX_EF_SEARCH if plan == "dedicated" else settings.MEMORY_HNSW_EF_SEARCH
            with transaction.atomic(), vector_cursor() as cursor:
                # One round trip for the three settings. With a selective user filter the planner prefers the
                # btree plus a sort; this plan exists to walk an HNSW index instead, hence enable_sort. (JIT,
                # which its cost estimate would trigger, is off for the whole connection: see DATABASES.)
                cursor.execute(
                    "SET LOCAL hnsw.iterative_scan = relaxed_order; "
                    f"SET LOCAL hnsw.ef_search = {int(max(ef_search, limit))}; SET LOCAL enable_sort = off"
                )
                # Unprepared: PostgreSQL then plans with the user id's value, which is what lets it prove that
                # a dedicated partial index (WHERE user_id = '...') applies.
                cursor.execute(sql, params, binary=True, prepare=False if plan == "dedicated" else None)
                rows = cursor.fetchall()
        if plan != "exact":
            rows.sort(key=lambda row: (row[1], row[0]))  # relaxed_order may return slightly out of order
        return [VectorMatch(memory_id=row[0], similarity=1.0 - float(row[1])) for row in rows]


def hnsw_query(
    vector: np.ndarray, user_id: str, sectors: Sequence[str] | None, limit: int, dedicated: bool = False
) -> tuple[str, list]:
    """The approximate plans' statement and parameters: nearest first, by an HNSW index.

    `dedicated` orders by the halfvec expression that only the users' own indexes hold (memories.user_indexes);
    the distance returned is the exact one either way.
    """
    sector_sql, sector_params = sector_filter(sectors)
    order, order_params = "distance", []
    if dedicated:
        order = f"embedding::halfvec({EMBEDDING_DIMENSIONS}) <=> %s::halfvec({EMBEDDING_DIMENSIONS})"
        order_params = [vector]
    sql = (
        f"SELECT id, embedding <=> %s AS distance FROM {TABLE} "
        f"WHERE user_id = %s AND superseded_by_id IS NULL{sector_sql} ORDER BY {order} LIMIT %s"
    )
    return sql, [vector, user_id, *sector_params, *order_params, limit]


def sector_filter(sectors: Sequence[str] | None) -> tuple[str, list]:
    """SQL (to append to a WHERE) and parameters keeping memories of any of `sectors`, primary or additional."""
    if not sectors:
        return "", []
    return " AND (sector = ANY(%s) OR extra_sectors ?| %s)", [list(sectors), list(sectors)]
