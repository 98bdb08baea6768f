"""Hybrid candidates in one PostgreSQL statement, for users on the exact plan (most callers: fewer than
MEMORY_HNSW_MIN_USER_MEMORIES memories).

The separate path costs three round trips and three plannings on the tool's path: the dense search
(search_backends.pgvector), the BM25 search (text_search, plus a fourth statement for the user's corpus
statistics whenever a process meets a user for the first time in a minute) and the fetch of the rows both found
(search.load_results). For a user on the exact plan all three read the same few hundred rows, so one statement
does it: the user's current rows once (a MATERIALIZED CTE, as the exact plan does), the cosine distances, BM25
over the rows holding a query word — its statistics (memory count, mean length, each word's document
frequency) counted on those same rows, exact rather than remembered — and the result columns of the union.
Same candidates, same order, same scores as the separate path (tests/memories/test_hybrid_sql.py checks it on
the database); measured in docs/benchmarks.md.
"""

import numpy as np
from django.conf import settings
from django.db import connection

from memories.models import Memory
from memories.owners import Owner
from memories.search import RESULT_ATTNAMES, memory_from_row, result_columns
from memories.search_backends import Scope, VectorMatch, get_search_backend
from memories.search_backends.pgvector import PgVectorSearch, scope_filter, vector_cursor
from memories.text_search import BM25_B, BM25_K1, config, query_terms
from memories.vector_plans import TABLE, Plan, plans


def applies(owner: Owner) -> bool:
    """Whether `owner`'s candidates can come from one statement: PostgreSQL, pgvector, the exact plan."""
    return (
        connection.vendor == "postgresql"
        and isinstance(get_search_backend(), PgVectorSearch)
        and plans.choose(owner) == Plan.EXACT
    )


def statement(scope: Scope) -> tuple[str, list]:
    """The SQL for `scope`, and the scope's parameters in the order the SQL needs them."""
    scope_sql, scope_params = scope_filter(scope, alias="mine")
    columns = result_columns("memory")
    sql = f"""
        WITH mine AS MATERIALIZED (
            SELECT id, embedding, search_vector, sector, extra_sectors, kind FROM {TABLE}
            WHERE space_id = %s AND user_id = %s AND superseded_by_id IS NULL
        ), dense AS (
            SELECT id, embedding <=> %s AS distance FROM mine WHERE TRUE{scope_sql}
            ORDER BY distance, id LIMIT %s
        ), words AS (
            SELECT array_agg(DISTINCT lexeme) AS lexemes,
                   to_tsquery('simple', string_agg(DISTINCT quote_literal(lexeme), ' | ')) AS tsquery
            FROM unnest(tsvector_to_array(to_tsvector(%s::regconfig, %s))) AS lexeme
        ), postings AS (
            SELECT mine.id, (TRUE{scope_sql}) AS admitted, entry.lexeme,
                   COALESCE(array_length(entry.positions, 1), 1) AS tf, length(mine.search_vector) AS length
            FROM mine, words, unnest(mine.search_vector) AS entry
            WHERE mine.search_vector @@ words.tsquery AND entry.lexeme = ANY(words.lexemes)
        ), kept AS (
            SELECT lexeme, COUNT(*) AS documents FROM postings GROUP BY lexeme HAVING COUNT(*) <= %s
        ), corpus AS MATERIALIZED (
            SELECT GREATEST(COUNT(*), %s) AS memories, GREATEST(COALESCE(AVG(length(search_vector)), 1), 1) AS mean
            FROM mine
        ), lexical AS (
            SELECT postings.id, SUM(
                ln(1 + (corpus.memories - kept.documents + 0.5) / (kept.documents + 0.5))
                * postings.tf * ({BM25_K1} + 1)
                / (postings.tf + {BM25_K1} * (1 - {BM25_B} + {BM25_B} * postings.length / corpus.mean))
            ) AS score
            FROM postings JOIN kept USING (lexeme), corpus
            WHERE postings.admitted
            GROUP BY postings.id ORDER BY score DESC, postings.id LIMIT %s
        )
        SELECT {columns}, dense.distance, lexical.score
        FROM {TABLE} AS memory LEFT JOIN dense USING (id) LEFT JOIN lexical USING (id)
        WHERE memory.id IN (SELECT id FROM dense UNION ALL SELECT id FROM lexical)
    """
    return sql, scope_params


def candidates(
    embedding: np.ndarray, query: str, owner: Owner, scope: Scope, limit: int, hybrid: bool
) -> tuple[list[VectorMatch], list[int], dict[int, Memory]]:
    """(dense matches nearest first, lexical ids best first, the rows of both) for `owner`, in one round trip.
    Without `hybrid` the lexical side is skipped (no query words are sent). Words in more than
    MEMORY_LEXICAL_MAX_DOCUMENTS of the user's memories are too common to match, as in text_search."""
    sql, scope_params = statement(scope)
    lexical_bound = settings.MEMORY_LEXICAL_MAX_DOCUMENTS
    terms = " ".join(query_terms(query)) if hybrid else ""
    params = [
        owner.space_id,
        owner.user_id,
        np.asarray(embedding, dtype=np.float32),
        *scope_params,
        limit,
        config(),
        terms,
        *scope_params,
        lexical_bound,
        lexical_bound,
        limit if terms else 0,
    ]
    with vector_cursor() as cursor:
        cursor.execute(sql, params, binary=True)
        rows = cursor.fetchall()
    width = len(RESULT_ATTNAMES)
    memories, dense, lexical = {}, [], []
    for row in rows:
        memory = memory_from_row(row[:width])
        memories[memory.pk] = memory
        distance, score = row[width], row[width + 1]
        if distance is not None:
            dense.append((float(distance), memory.pk))
        if score is not None:
            lexical.append((-float(score), memory.pk))
    dense.sort()
    lexical.sort()
    matches = [VectorMatch(memory_id=memory_id, similarity=1.0 - distance) for distance, memory_id in dense]
    return matches, [memory_id for _, memory_id in lexical], memories
