"""pgvector search (the production stack): the user's plan (memories.vector_plans) decides how rows are found.

- exact: a MATERIALIZED CTE over the user's rows keeps the planner from walking the HNSW index and filtering
  afterwards, which loses recall for small users.
- shared HNSW: iterative scans (pgvector >= 0.8, `hnsw.iterative_scan = relaxed_order`) keep walking until
  enough rows pass the user filter; `enable_sort = off` for the transaction, or the planner prefers the btree
  and a sort.
- dedicated: orders by the expression only the user's own index holds, a short walk
  (MEMORY_USER_INDEX_EF_SEARCH), re-ranked by the exact distance; sent unprepared so PostgreSQL plans with the
  user id's value and can prove the partial index applies.
"""

import weakref
from contextlib import contextmanager

import numpy as np
import psycopg
from django.conf import settings
from django.db import connection, transaction
from pgvector.psycopg import register_vector

from memories.owners import Owner
from memories.search_backends.base import Scope, SearchBackend, VectorMatch
from memories.vector_plans import TABLE, Plan, dedicated_expression, dedicated_type, plans

_registered: "weakref.WeakSet" = weakref.WeakSet()
# Session-level hnsw.ef_search last set on each connection by the dedicated plan (outside transactions only).
_session_ef_search: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


@contextmanager
def vector_cursor():
    """A server-side-binding psycopg cursor on Django's connection, with pgvector's binary adapters.

    Query vectors then travel as 6 KB of float32 instead of ~20 KB of decimal text that Python formats and
    PostgreSQL parses: the initiation's eight-vector search went from 19 ms to 7 ms (docs/benchmarks.md).
    """
    with connection.wrap_database_errors:  # psycopg's errors as Django's, like on Django's own cursors
        connection.ensure_connection()
        raw = connection.connection
        if raw not in _registered:
            register_vector(raw)
            _registered.add(raw)
        with psycopg.Cursor(raw) as cursor:
            yield cursor


class PgVectorSearch(SearchBackend):
    def search(self, embedding: np.ndarray, owner: Owner, scope: Scope, limit: int) -> list[VectorMatch]:
        return self.search_with_plan(plans.choose(owner), embedding, owner, scope, limit)

    def search_many(self, embeddings, owner: Owner, limit: int) -> list[list[VectorMatch]]:
        """All query vectors in one statement on the exact plan (the user's rows are read once)."""
        if not embeddings:
            return []
        if plans.choose(owner) != Plan.EXACT:
            return super().search_many(embeddings, owner, limit)
        vectors = [np.asarray(embedding, dtype=np.float32) for embedding in embeddings]
        sql = (
            f"WITH candidates AS MATERIALIZED (SELECT id, embedding FROM {TABLE} "
            "WHERE space_id = %s AND user_id = %s AND superseded_by_id IS NULL), "
            "queries AS (SELECT position, query FROM unnest(%s::vector[]) WITH ORDINALITY "
            "AS given(query, position)) "
            "SELECT queries.position, best.id, best.distance FROM queries CROSS JOIN LATERAL "
            "(SELECT id, embedding <=> queries.query AS distance FROM candidates ORDER BY distance, id LIMIT %s) best "
            "ORDER BY queries.position, best.distance, best.id"
        )
        results: list[list[VectorMatch]] = [[] for _ in embeddings]
        with vector_cursor() as cursor:
            cursor.execute(sql, [owner.space_id, owner.user_id, vectors, limit], binary=True)
            for position, memory_id, distance in cursor.fetchall():
                results[position - 1].append(VectorMatch(memory_id=memory_id, similarity=1.0 - float(distance)))
        return results

    @staticmethod
    def _dedicated_search(vector: np.ndarray, owner: Owner, scope: Scope, limit: int) -> list:
        """The dedicated plan in one round trip (outside transactions): no BEGIN, SET LOCAL, COMMIT.

        Its two settings are set for the session instead, once per connection and value: they only affect
        HNSW scans, and the shared plan sets its own for its transaction. enable_sort is not needed: no other
        index serves the halfvec ORDER BY, and sorting the user's rows (a dedicated index exists only for users
        of thousands of memories) costs the planner far more than the walk. A profile under load showed the
        three extra round trips as a fifth of the worker's time (docs/benchmarks.md).
        """
        ef_search = int(max(settings.MEMORY_USER_INDEX_EF_SEARCH, limit))
        sql, params = hnsw_query(vector, owner, scope, limit, dedicated=True)
        with vector_cursor() as cursor:
            raw = connection.connection
            if _session_ef_search.get(raw) != ef_search:
                cursor.execute(f"SET hnsw.iterative_scan = relaxed_order; SET hnsw.ef_search = {ef_search}")
                _session_ef_search[raw] = ef_search
            cursor.execute(sql, params, binary=True, prepare=False)  # unprepared: see search_with_plan
            return cursor.fetchall()

    def search_with_plan(
        self, plan: Plan, embedding: np.ndarray, owner: Owner, scope: Scope, limit: int
    ) -> list[VectorMatch]:
        vector = np.asarray(embedding, dtype=np.float32)
        if plan == Plan.EXACT:
            scope_sql, scope_params = scope_filter(scope)
            sql = (
                f"WITH candidates AS MATERIALIZED (SELECT id, embedding FROM {TABLE} "
                f"WHERE space_id = %s AND user_id = %s AND superseded_by_id IS NULL{scope_sql}) "
                "SELECT id, embedding <=> %s AS distance FROM candidates ORDER BY distance, id LIMIT %s"
            )
            params = [owner.space_id, owner.user_id, *scope_params, vector, limit]
            with vector_cursor() as cursor:
                cursor.execute(sql, params, binary=True)
                rows = cursor.fetchall()
        elif plan == Plan.DEDICATED and not connection.in_atomic_block:
            rows = self._dedicated_search(vector, owner, scope, limit)
        else:
            sql, params = hnsw_query(vector, owner, scope, limit, dedicated=plan == Plan.DEDICATED)
            ef_search = (
                settings.MEMORY_USER_INDEX_EF_SEARCH if plan == Plan.DEDICATED else settings.MEMORY_HNSW_EF_SEARCH
            )
            with transaction.atomic(), vector_cursor() as cursor:
                # One round trip for the three settings. With a selective user filter the planner prefers the
                # btree plus a sort; this plan exists to walk an HNSW index instead, hence enable_sort. (JIT,
                # which its cost estimate would trigger, is off for the whole connection: see DATABASES.)
                cursor.execute(
                    "SET LOCAL hnsw.iterative_scan = relaxed_order; "
                    f"SET LOCAL hnsw.ef_search = {int(max(ef_search, limit))}; SET LOCAL enable_sort = off"
                )
                # Unprepared: PostgreSQL then plans with the user id's value, which is what lets it prove that
                # a dedicated partial index (WHERE space_id = ... AND user_id = '...') applies.
                cursor.execute(sql, params, binary=True, prepare=False if plan == Plan.DEDICATED else None)
                rows = cursor.fetchall()
        if plan != Plan.EXACT:
            rows.sort(key=lambda row: (row[1], row[0]))  # relaxed_order may return slightly out of order
        return [VectorMatch(memory_id=row[0], similarity=1.0 - float(row[1])) for row in rows]


def hnsw_query(vector: np.ndarray, owner: Owner, scope: Scope, limit: int, dedicated: bool = False) -> tuple[str, list]:
    """The approximate plans' statement and parameters: nearest first, by an HNSW index.

    `dedicated` orders by the expression that only the users' own indexes hold (memories.vector_plans); the
    distance returned is the exact one either way.
    """
    scope_sql, scope_params = scope_filter(scope)
    order, order_params = "distance", []
    if dedicated:
        order = f"{dedicated_expression()} <=> %s::{dedicated_type()}"
        order_params = [vector]
    sql = (
        f"SELECT id, embedding <=> %s AS distance FROM {TABLE} "
        f"WHERE space_id = %s AND user_id = %s AND superseded_by_id IS NULL{scope_sql} ORDER BY {order} LIMIT %s"
    )
    return sql, [vector, owner.space_id, owner.user_id, *scope_params, *order_params, limit]


def scope_filter(scope: Scope, alias: str = "") -> tuple[str, list]:
    """SQL (to append to a WHERE) and parameters keeping the memories `scope` admits."""
    column = f"{alias}." if alias else ""
    sql, params = "", []
    if scope.sectors:
        sql += f" AND ({column}sector = ANY(%s) OR {column}extra_sectors ?| %s)"
        params += [list(scope.sectors), list(scope.sectors)]
    if scope.kinds:
        sql += f" AND {column}kind = ANY(%s)"
        params.append(list(scope.kinds))
    return sql, params
