"""The lexical index beside the vector index: words, scored with BM25, per user, on both stacks.

Dense vectors miss what words catch (names, places, numbers, rare nouns: "Caroline", "pottery", "May 2023");
hybrid retrieval (memories.query) fuses both. The index is kept in sync by the database itself, so every path
that writes memories (services, admin, bulk loads, migrations) updates it:

- PostgreSQL: a stored generated column `search_vector` = to_tsvector(MEMORY_TEXT_SEARCH_CONFIG, text), with a
  GIN index on (space_id, user_id, search_vector) (btree_gin), so one user's matches come from the index alone.
  Scores are BM25 computed in SQL: document frequencies counted per query word through the index (a word in more than
  MEMORY_LEXICAL_MAX_DOCUMENTS of the user's memories is too common to match: this bounds the work for users of
  tens of thousands of memories), the user's memory count and mean length remembered per process for
  MEMORY_PLAN_CACHE_SECONDS, and so are the counts of a user's common words (see `remembered_frequencies`).
- SQLite: an FTS5 table over the memories' text (external content, porter stemming for English) kept by
  triggers; scored by FTS5's own bm25() (statistics over every user's memories).

Queries are turned into an OR of their words (stop words removed): a question is not a Boolean expression,
and nothing a caller types can be a syntax error. A query of stop words only matches nothing, cleanly.
"""

import re
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from memories.models import Memory
from memories.owners import Owner
from memories.search import RESULT_ATTNAMES, load_results, memory_from_row, result_columns
from memories.search_backends.base import Scope
from memories.search_backends.pgvector import scope_filter

TABLE = Memory._meta.db_table
SQLITE_INDEX = "memory_text_search"
POSTGRES_INDEX = "memory_owner_text_search"
OLD_POSTGRES_INDEX = "memory_user_text_search"
BM25_K1, BM25_B = 1.2, 0.75
MAX_QUERY_TERMS = 32
CONFIG_NAME = re.compile(r"[a-z_]{1,63}")
WORD = re.compile(r"\w+", re.UNICODE)
# FTS5 has no stop words; these English ones would only add noise to a question's OR (PostgreSQL's 'english'
# configuration drops the same kind of words itself).
STOP_WORDS = frozenset(
    "a about after again all am an and any are as at be been before being between both but by can could did do "
    "does doing down during each few for from further had has have having he her here hers herself him himself his "
    "how i if in into is it its itself just me more most my myself no nor not now of off on once only or other our "
    "ours ourselves out over own same she should so some such than that the their theirs them themselves then there "
    "these they this those through to too under until up very was we were what when where which while who whom why "
    "will with would you your yours yourself yourselves".split()
)


@dataclass(frozen=True)
class LexicalMatch:
    memory_id: int
    score: float  # BM25: higher is better


def config() -> str:
    """The text search configuration (PostgreSQL's name: 'english', 'simple', 'french', ...), validated."""
    name = settings.MEMORY_TEXT_SEARCH_CONFIG
    if not CONFIG_NAME.fullmatch(name):
        raise ValueError(f"MEMORY_TEXT_SEARCH_CONFIG must be a text search configuration name, got {name!r}")
    return name


# --- The index itself ----------------------------------------------------------------------------------------


def postgres_statements(config_name: str) -> list[str]:
    return [
        "CREATE EXTENSION IF NOT EXISTS btree_gin",
        f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS search_vector tsvector "
        f"GENERATED ALWAYS AS (to_tsvector('{config_name}'::regconfig, text)) STORED",
        f"CREATE INDEX IF NOT EXISTS {POSTGRES_INDEX} ON {TABLE} USING gin (space_id, user_id, search_vector)",
        f"DROP INDEX IF EXISTS {OLD_POSTGRES_INDEX}",
    ]


def sqlite_statements(config_name: str) -> list[str]:
    tokenizer = "porter unicode61 remove_diacritics 2" if config_name == "english" else "unicode61 remove_diacritics 2"
    delete = f"INSERT INTO {SQLITE_INDEX}({SQLITE_INDEX}, rowid, text) VALUES ('delete', old.id, old.text);"
    insert = f"INSERT INTO {SQLITE_INDEX}(rowid, text) VALUES (new.id, new.text);"
    return [
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {SQLITE_INDEX} USING fts5("
        f"text, content='{TABLE}', content_rowid='id', tokenize='{tokenizer}')",
        f"CREATE TRIGGER IF NOT EXISTS {SQLITE_INDEX}_insert AFTER INSERT ON {TABLE} BEGIN {insert} END",
        f"CREATE TRIGGER IF NOT EXISTS {SQLITE_INDEX}_delete AFTER DELETE ON {TABLE} BEGIN {delete} END",
        f"CREATE TRIGGER IF NOT EXISTS {SQLITE_INDEX}_update AFTER UPDATE OF text ON {TABLE} "
        f"BEGIN {delete} {insert} END",
    ]


def install(schema_connection, rebuild: bool = False) -> None:
    """Create the index on `schema_connection` if it is missing (idempotent); `rebuild` refills SQLite's from the
    memories (a migration on existing data, or after a table was remade without its triggers)."""
    config_name = config()
    with schema_connection.cursor() as cursor:
        if schema_connection.vendor == "postgresql":
            for statement in postgres_statements(config_name):
                cursor.execute(statement)
        elif schema_connection.vendor == "sqlite":
            cursor.execute(f"SELECT 1 FROM sqlite_master WHERE name = '{SQLITE_INDEX}_update'")
            missing = cursor.fetchone() is None
            for statement in sqlite_statements(config_name):
                cursor.execute(statement)
            if rebuild or missing:
                cursor.execute(f"INSERT INTO {SQLITE_INDEX}({SQLITE_INDEX}) VALUES ('rebuild')")


def uninstall(schema_connection) -> None:
    with schema_connection.cursor() as cursor:
        if schema_connection.vendor == "postgresql":
            cursor.execute(f"DROP INDEX IF EXISTS {POSTGRES_INDEX}")
            cursor.execute(f"ALTER TABLE {TABLE} DROP COLUMN IF EXISTS search_vector")
        elif schema_connection.vendor == "sqlite":
            for suffix in ("insert", "delete", "update"):
                cursor.execute(f"DROP TRIGGER IF EXISTS {SQLITE_INDEX}_{suffix}")
            cursor.execute(f"DROP TABLE IF EXISTS {SQLITE_INDEX}")


# --- Searching -----------------------------------------------------------------------------------------------


def query_terms(text: str) -> list[str]:
    """The words of a query worth matching: lower case, no stop words, no repeats, at most MAX_QUERY_TERMS."""
    words = [word for word in WORD.findall(text.lower()) if len(word) > 1 or word.isdigit()]
    return list(dict.fromkeys(word for word in words if word not in STOP_WORDS))[:MAX_QUERY_TERMS]


def lexical_search(text: str, owner: Owner, scope: Scope, limit: int) -> list[LexicalMatch]:
    """The user's current memories within `scope` sharing words with `text`, best BM25 first (ties by id)."""
    terms = query_terms(text)
    if not terms or limit < 1:
        return []
    if connection.vendor == "postgresql":
        return _postgres_bm25(terms, owner, scope, limit)[0]
    return _sqlite_bm25(terms, owner, scope, limit)


def lexical_candidates(
    text: str, owner: Owner, scope: Scope, limit: int, also: Collection[int]
) -> tuple[list[int], dict[int, Memory]]:
    """(lexical_search's ids, the rows of those and of the ids in `also`): the query path's lexical side and its
    fetch of the rows both sides found. On PostgreSQL one statement (a round trip fewer for the users whose dense
    search is a statement of its own); otherwise the search, then search.load_results."""
    terms = query_terms(text)
    if not terms or limit < 1:
        return [], load_results(set(also), owner)
    if connection.vendor == "postgresql":
        matches, memories = _postgres_bm25(terms, owner, scope, limit, also)
        return [match.memory_id for match in matches], memories
    ids = [match.memory_id for match in _sqlite_bm25(terms, owner, scope, limit)]
    return ids, load_results({*also, *ids}, owner)


def _sqlite_scope(scope: Scope) -> tuple[str, list]:
    sql, params = "", []
    if scope.sectors:
        marks = ", ".join("%s" for _ in scope.sectors)
        sql += (
            f" AND (memory.sector IN ({marks}) OR EXISTS "
            f"(SELECT 1 FROM json_each(memory.extra_sectors) WHERE value IN ({marks})))"
        )
        params += [*scope.sectors, *scope.sectors]
    if scope.kinds:
        sql += f" AND memory.kind IN ({', '.join('%s' for _ in scope.kinds)})"
        params += list(scope.kinds)
    return sql, params


def _sqlite_bm25(terms: list[str], owner: Owner, scope: Scope, limit: int) -> list[LexicalMatch]:
    match = " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)
    scope_sql, scope_params = _sqlite_scope(scope)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT memory.id, -bm25({SQLITE_INDEX}) AS score FROM {SQLITE_INDEX} "
            f"JOIN {TABLE} AS memory ON memory.id = {SQLITE_INDEX}.rowid "
            f"WHERE {SQLITE_INDEX} MATCH %s AND memory.space_id = %s AND memory.user_id = %s "
            f"AND memory.superseded_by_id IS NULL{scope_sql} "
            "ORDER BY score DESC, memory.id LIMIT %s",
            [match, owner.space_id, owner.user_id, *scope_params, limit],
        )
        return [LexicalMatch(memory_id=row[0], score=float(row[1])) for row in cursor.fetchall()]


@dataclass(frozen=True)
class CorpusStatistics:
    memories: int
    mean_length: float


_corpus: dict[Owner, tuple[CorpusStatistics, float]] = {}


def corpus_statistics(owner: Owner) -> CorpusStatistics:
    """The user's current memory count and mean indexed length, remembered for MEMORY_PLAN_CACHE_SECONDS (BM25
    needs them; they drift slowly, and reading them costs a pass over the user's rows)."""
    now = time.monotonic()
    remembered = _corpus.get(owner)
    if remembered is not None and remembered[1] > now:
        return remembered[0]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*), COALESCE(AVG(length(search_vector)), 1) FROM {TABLE} "
            "WHERE space_id = %s AND user_id = %s AND superseded_by_id IS NULL",
            [owner.space_id, owner.user_id],
        )
        count, mean = cursor.fetchone()
    statistics = CorpusStatistics(memories=int(count), mean_length=max(1.0, float(mean)))
    if len(_corpus) >= 100_000:
        _corpus.clear()
    _corpus[owner] = (statistics, now + settings.MEMORY_PLAN_CACHE_SECONDS)
    return statistics


# A word's document count is remembered only from this many memories up: counting fewer is cheap, and a rare word's
# count must see a memory stored a moment ago (the remember tool's fact, found by the next query of the call).
REMEMBER_FREQUENCIES_FROM = 64
MAX_REMEMBERED_WORDS = 50_000  # per process, all users (about 10 MB); past it everything is counted afresh

_frequencies: dict[tuple[Owner, str, int], dict[str, tuple[int, float]]] = {}
_frequencies_lock = threading.Lock()  # gthread serves several queries of a process at once


def remembered_frequencies(owner: Owner, bound: int) -> dict[str, int]:
    """The document counts of `owner`'s common words (lexemes) counted in the last MEMORY_PLAN_CACHE_SECONDS, each
    capped at `bound` + 1 as counted. Counting them is most of a heavy user's lexical match (up to `bound` + 1 rows
    read per word). Like the corpus statistics they drift slowly while remembered: a count of 64 or more moves
    BM25's weight of the word by little; a word counted as too common stays left out, and one remembered under
    the bound stays in, until its count expires."""
    now = time.monotonic()
    with _frequencies_lock:
        remembered = _frequencies.get((owner, config(), bound), {})
        return {lexeme: documents for lexeme, (documents, expires) in remembered.items() if expires > now}


def remember_frequencies(owner: Owner, bound: int, counted: dict[str, int]) -> None:
    if settings.MEMORY_PLAN_CACHE_SECONDS <= 0:
        return
    now = time.monotonic()
    expires = now + settings.MEMORY_PLAN_CACHE_SECONDS
    key = (owner, config(), bound)
    with _frequencies_lock:
        remembered = {
            lexeme: entry for lexeme, entry in _frequencies.get(key, {}).items() if entry[1] > now
        }  # the user's expired counts go as theirs are written
        remembered.update((lexeme, (documents, expires)) for lexeme, documents in counted.items())
        if sum(map(len, _frequencies.values())) + len(counted) > MAX_REMEMBERED_WORDS:
            _frequencies.clear()
        _frequencies[key] = remembered


def forget_statistics(owner: Owner | None = None) -> None:
    """Drop what this process remembers of one user's words and corpus (a forgotten user), or of everyone's.
    Other processes stop using theirs when they expire, and drop them when their budget is reached."""
    with _frequencies_lock:
        if owner is None:
            _corpus.clear()
            _frequencies.clear()
            return
        _corpus.pop(owner, None)
        for key in [key for key in _frequencies if key[0] == owner]:
            del _frequencies[key]


def _postgres_bm25(
    terms: list[str], owner: Owner, scope: Scope, limit: int, also: Collection[int] = ()
) -> tuple[list[LexicalMatch], dict[int, Memory]]:
    """BM25 in one statement, with bounded work however big the user: the query's lexemes (normalised by the
    configuration, as the column's); each one's document frequency among the user's memories, counted through the
    (space_id, user_id, search_vector) GIN index but never past MEMORY_LEXICAL_MAX_DOCUMENTS; the lexemes above that
    bound
    are too common to be worth matching (BM25 gives them little weight anyway, and the dense side still sees
    them); the user's memories holding any remaining lexeme, term frequencies from their tsvectors. With them come
    the rows (search.RESULT_FIELDS) of the matches and of the ids in `also`, and the word counts worth
    remembering."""
    corpus = corpus_statistics(owner)
    columns = result_columns("memory")
    no_columns = ", ".join("NULL" for _ in RESULT_ATTNAMES)
    scope_sql, scope_params = scope_filter(scope, alias="memory")
    sql = f"""
        WITH lexemes AS (
            SELECT DISTINCT lexeme FROM unnest(tsvector_to_array(to_tsvector(%s::regconfig, %s))) AS lexeme
        ), known AS (
            SELECT * FROM unnest(%s::text[], %s::bigint[]) AS known (lexeme, documents)
        ), frequency AS MATERIALIZED (  -- counted once: inlined, the two bounds below would count twice
            SELECT lexemes.lexeme, known.documents IS NULL AS counted, COALESCE(known.documents, (
                SELECT COUNT(*) FROM (
                    SELECT 1 FROM {TABLE} AS counted
                    WHERE counted.space_id = %s AND counted.user_id = %s AND counted.superseded_by_id IS NULL
                      AND counted.search_vector @@ to_tsquery('simple', quote_literal(lexemes.lexeme))
                    LIMIT %s
                ) AS bounded
            )) AS documents
            FROM lexemes LEFT JOIN known USING (lexeme)
        ), kept AS (
            SELECT lexeme, documents FROM frequency WHERE documents BETWEEN 1 AND %s
        ), query AS (
            SELECT to_tsquery('simple', string_agg(quote_literal(lexeme), ' | ')) AS tsquery, array_agg(lexeme) AS words
            FROM kept HAVING COUNT(*) > 0
        ), matched AS (
            SELECT memory.id, memory.search_vector FROM {TABLE} AS memory, query
            WHERE memory.space_id = %s AND memory.user_id = %s AND memory.superseded_by_id IS NULL
              AND memory.search_vector @@ query.tsquery
            {scope_sql}
        ), postings AS (
            SELECT matched.id, entry.lexeme, COALESCE(array_length(entry.positions, 1), 1) AS tf,
                   length(matched.search_vector) AS length
            FROM matched, query, unnest(matched.search_vector) AS entry
            WHERE entry.lexeme = ANY(query.words)
        ), ranked AS (
            SELECT postings.id, SUM(
                ln(1 + (%s - kept.documents + 0.5) / (kept.documents + 0.5)) * postings.tf * ({BM25_K1} + 1)
                / (postings.tf + {BM25_K1} * (1 - {BM25_B} + {BM25_B} * postings.length / %s))
            ) AS score
            FROM postings JOIN kept USING (lexeme)
            GROUP BY postings.id ORDER BY score DESC, postings.id LIMIT %s
        )
        SELECT {columns}, ranked.score, NULL AS lexeme, NULL::bigint AS documents
        FROM {TABLE} AS memory LEFT JOIN ranked USING (id)
        WHERE memory.space_id = %s AND memory.user_id = %s
          AND memory.id IN (SELECT id FROM ranked UNION ALL SELECT unnest(%s::bigint[]))
        UNION ALL  -- and the counts worth remembering
        SELECT {no_columns}, NULL, lexeme, documents FROM frequency WHERE counted AND documents >= %s
    """
    bound = settings.MEMORY_LEXICAL_MAX_DOCUMENTS
    known = remembered_frequencies(owner, bound)
    params = [
        config(),
        " ".join(terms),
        list(known),
        list(known.values()),
        owner.space_id,
        owner.user_id,
        bound + 1,
        bound,
        owner.space_id,
        owner.user_id,
        *scope_params,
        max(corpus.memories, bound),
        corpus.mean_length,
        limit,
        owner.space_id,
        owner.user_id,
        sorted(also),
        REMEMBER_FREQUENCIES_FROM,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    width = len(RESULT_ATTNAMES)
    counted, memories, matches = {}, {}, []
    for row in rows:
        score, lexeme, documents = row[width:]
        if lexeme is not None:
            counted[lexeme] = documents
            continue
        memory = memory_from_row(row[:width])
        memories[memory.pk] = memory
        if score is not None:
            matches.append(LexicalMatch(memory_id=memory.pk, score=float(score)))
    if counted:
        remember_frequencies(owner, bound, counted)
    return sorted(matches, key=lambda match: (-match.score, match.memory_id)), memories
