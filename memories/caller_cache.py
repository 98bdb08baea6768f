"""Callers' memories held in the web process: a caller's memory query without the database's statement.

A caller in a call asks several questions within minutes, each against the same few hundred memories. On the
database path every one costs the hybrid statement (memories.hybrid_sql): about 1.1 ms of round trip and
planning, and at 32 concurrent clients about 1.6 ms of PostgreSQL's CPU a query, more than the rest of the tool
(docs/benchmarks.md). Here the first query of a caller loads their current memories once (rows, vectors and
the words of each stored tsvector); the next ones compute the same candidates in-process.

How it stays right:
- An entry was loaded under two tokens, random bytes in the embedding cache's Redis: the caller's and
  everyone's. Each query reads both in the MGET of its embedding (embeddings.generation.generate_embedding_riding)
  and uses the entry only if they are still the ones it was loaded under; otherwise the caller is loaded afresh.
- Every write of a caller's memories replaces the caller's token once its transaction commits (`caller_changed`:
  Memory's post_save, services' deletions and forgetting, re-embedding) and drops this process's entry at once;
  whole-table changes (resizing the vectors, rebuilding the text index, migrations) replace everyone's
  (`everyone_changed`). Every process that writes replaces tokens, copies of its own or not. Random rather than
  counted: a token evicted from Redis comes back as a new one, never as an old value an entry could still match.
- An entry is used for MEMORY_CALLER_CACHE_SECONDS at most, which bounds what the tokens do not see: a
  reinforcement's salience and access counts (which the default ranking does not read), a write made in raw
  SQL, a token that could not be replaced while Redis was unreachable (replaced as soon as it is back).
- Redis unreachable: queries take the database path.

It serves users on the exact plan (fewer than MEMORY_HNSW_MIN_USER_MEMORIES memories) on PostgreSQL with the
embedding cache on Redis; the embedded stack's search is in-process already. At most MEMORY_CALLER_CACHE_MB per
process, the least recently used callers leave first; a caller bigger than that (or than the exact plan) is
answered by the statement and not read again for MEMORY_CALLER_CACHE_SECONDS.

The candidates are hybrid_sql's, computed the same way: cosine distances over the same vectors (nearest first,
ties by id), BM25 over the same postings with the same statistics (the caller's current memory count, floored at
MEMORY_LEXICAL_MAX_DOCUMENTS; their mean tsvector length; each query word's documents among all their current
memories, words in more than MEMORY_LEXICAL_MAX_DOCUMENTS left out), the query's words normalised by
PostgreSQL's own to_tsvector (one short statement for a new question, remembered per process).
tests/memories/test_caller_cache.py compares both on the database.
"""

import functools
import hashlib
import math
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence

import numpy as np
from django.conf import settings
from django.core.cache import caches
from django.core.signals import setting_changed
from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.dispatch import receiver
from prometheus_client import Counter

from core.requests import REGISTRY
from embeddings.cache import embedding_backend_name
from embeddings.failure_policy import CacheFailurePolicy, fail_open
from memories.models import Memory
from memories.owners import Owner
from memories.search import RESULT_ATTNAMES, memory_from_row, result_columns, sectors_from_row
from memories.search_backends import Scope, VectorMatch
from memories.search_backends.exact import cosine_similarities
from memories.search_backends.pgvector import vector_cursor
from memories.text_search import BM25_B, BM25_K1, config, query_terms
from memories.vector_plans import plans

TABLE = Memory._meta.db_table
# The tokens live beside the embeddings, in their cache's Redis: the query's embedding and the caller's two tokens
# are read in one round trip (embeddings.generation.generate_embedding_riding).
CACHE_ALIAS = "embeddings"
UNREAD = object()
EVERYONE_KEY = "caller-cache:everyone"
OWNER_TOKEN_SECONDS = 3_600  # far longer than an entry lives; an expired token only means one reload
# Besides the vector and the text: the row, its share of the postings, and the Memory instance once a query has
# returned it (tracemalloc, the benchmark's memories at 384 dimensions: 3.4 KB a memory before its instance is
# made, 1.5 KB of which the vector; about 1 KB more after).
MEMORY_OVERHEAD_BYTES = 2_000
MAX_COPIED_MEMORIES = 3_000  # when MEMORY_HNSW_MIN_USER_MEMORIES is 0 (every user on the exact plan)
MAX_TOO_BIG = 10_000
ID, TEXT, SECTOR, EXTRA_SECTORS, KIND = (
    RESULT_ATTNAMES.index(name) for name in ("id", "text", "sector", "extra_sectors", "kind")
)
QUERIES = Counter(
    "memory_caller_cache_queries",
    "Memory queries of callers on the exact plan, by where their candidates came from: this process's copy (hit), "
    "a copy loaded for it (load), or the database (database: the shared cache unreachable, or the caller too big).",
    ["outcome"],
    registry=REGISTRY,
)
HITS, LOADS, TO_DATABASE = (QUERIES.labels(outcome) for outcome in ("hit", "load", "database"))


@functools.lru_cache(maxsize=65_536)
def token_key(owner: Owner) -> str:
    """The caller's token's key: a hash, so no user id is written into Redis key names."""
    return "caller-cache:" + hashlib.sha256(owner.key.encode()).hexdigest()[:32]


def token_keys(owner: Owner) -> tuple[str, str]:
    """The keys of the two tokens a copy of `owner` is checked against: theirs and everyone's."""
    return token_key(owner), EVERYONE_KEY


def new_token() -> bytes:
    return secrets.token_hex(8).encode()  # bytes: the embedding cache stores raw bytes only


def tokens_shared() -> bool:
    """Whether copies can exist on this deployment (PostgreSQL, tokens in a Redis every process shares), whatever
    this process's MEMORY_CALLER_CACHE_MB: a worker that keeps no copies must still replace the tokens of what it
    writes, or the web processes' copies would outlive its writes."""
    return connection.vendor == "postgresql" and shared_cache_configured()


@functools.cache
def shared_cache_configured() -> bool:
    """Whether the embedding cache is Redis, which every process shares (the embedded stack's SQLite file serves
    one machine's processes, but copies need PostgreSQL anyway)."""
    return embedding_backend_name(CACHE_ALIAS) == "EmbeddingRedisCache"


@functools.lru_cache(maxsize=8192)
def query_lexemes(config_name: str, terms: str) -> tuple[str, ...]:
    """The distinct lexemes of `terms` under the text search configuration, as hybrid_sql's statement finds them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT array_agg(DISTINCT lexeme) FROM unnest(tsvector_to_array(to_tsvector(%s::regconfig, %s))) "
            "AS lexeme",
            [config_name, terms],
        )
        return tuple(cursor.fetchone()[0] or ())


# A tsvector as PostgreSQL writes it: 'lexeme':1,4B 'other' ... (quotes and backslashes in a lexeme doubled).
TSVECTOR_ENTRY = re.compile(r"'((?:[^'\\]|''|\\.)*)'(?::([0-9A-D,]+))?")
ESCAPED = re.compile(r"''|\\(.)")


def parse_tsvector(text: str | None) -> list[tuple[str, int]]:
    """(lexeme, its number of positions, 1 for a stripped one) for each entry of a tsvector's text: what
    `unnest(tsvector)` gives as lexeme and array_length(positions), without building arrays in the database (five
    times the statement's execution time for a caller of 80 memories)."""
    return [
        (
            ESCAPED.sub(unescape, lexeme) if "'" in lexeme or "\\" in lexeme else lexeme,
            positions.count(",") + 1 if positions else 1,
        )
        for lexeme, positions in TSVECTOR_ENTRY.findall(text or "")
    ]


def unescape(escape: re.Match) -> str:
    return escape.group(1) or "'"


def copied_row(row: Sequence, width: int) -> tuple:
    """A raw row's RESULT_ATTNAMES columns as a tuple of plain values (extra_sectors a tuple of its names)."""
    values = list(row[:width])
    values[EXTRA_SECTORS] = tuple(sectors_from_row(values[EXTRA_SECTORS]))
    return tuple(values)


class CallerEntry:
    """One caller's current memories, as loaded under `tokens`. Their Memory instances are made when a query
    first returns them (making all of them up front was most of a load)."""

    def __init__(self, tokens: tuple[bytes, bytes], rows: Sequence[Sequence], expires: float):
        width = len(RESULT_ATTNAMES)
        self.tokens = tokens
        self.expires = expires
        # Tuples of plain values, so that the garbage collector stops tracking them: a full collection walks every
        # tracked object, and lists and dicts per memory made it 130 ms in a web process holding 200 callers.
        self.rows = tuple(copied_row(row, width) for row in rows)
        self._memories: list[Memory | None] = [None] * len(rows)
        self.ids = np.fromiter((row[ID] for row in rows), dtype=np.int64, count=len(rows))
        self.ids_list = tuple(int(memory_id) for memory_id in self.ids)
        self.positions = {memory_id: position for position, memory_id in enumerate(self.ids_list)}
        dimensions = Memory._meta.get_field("embedding").dimensions
        self.vectors = (
            np.vstack([row[width].to_numpy() for row in rows]).astype(np.float32, copy=False)  # pgvector's Vector
            if rows
            else np.zeros((0, dimensions), dtype=np.float32)
        )
        self.norms = np.linalg.norm(self.vectors.astype(np.float64), axis=1)
        # lexeme -> ((row position, term frequency), ...); most lexemes are in one or two memories
        postings: dict[str, list[tuple[int, int]]] = {}
        lengths = []
        for position, row in enumerate(rows):
            entries = parse_tsvector(row[width + 1])
            lengths.append(len(entries))
            for lexeme, frequency in entries:
                postings.setdefault(lexeme, []).append((position, frequency))
        self.postings = {lexeme: tuple(posting) for lexeme, posting in postings.items()}
        self.lengths = tuple(lengths)
        self.mean_length = max(1.0, sum(lengths) / len(lengths)) if rows else 1.0
        self._scopes: dict[Scope, np.ndarray] = {}
        self.nbytes = (
            self.vectors.nbytes
            + sum(len(row[TEXT]) for row in rows)
            + sum(len(lexeme) + 120 for lexeme in self.postings)
            + MEMORY_OVERHEAD_BYTES * len(rows)
        )

    def memory(self, memory_id: int) -> Memory:
        position = self.positions[memory_id]
        memory = self._memories[position]
        if memory is None:  # two threads may both make it: the same values either way
            memory = self._memories[position] = memory_from_row(self.rows[position])
        return memory

    def admitted(self, scope: Scope) -> np.ndarray:
        mask = self._scopes.get(scope)
        if mask is None:
            mask = np.fromiter(
                (scope.admits(row[SECTOR], row[EXTRA_SECTORS], row[KIND]) for row in self.rows),
                dtype=bool,
                count=len(self.rows),
            )
            self._scopes[scope] = mask  # a handful of scopes per caller: the sectors an agent asks for
        return mask

    def dense(self, embedding: np.ndarray, admitted: np.ndarray, limit: int) -> list[VectorMatch]:
        """The nearest `limit` admitted memories by cosine distance, ties by id (ORDER BY distance, id)."""
        # float32 products, as pgvector accumulates them (a float64 query would convert the whole matrix each time)
        distances = 1.0 - cosine_similarities(self.vectors, np.asarray(embedding, dtype=np.float32), self.norms)
        rows = np.flatnonzero(admitted)
        order = rows[np.lexsort((self.ids[rows], distances[rows]))][:limit]
        similarities = (1.0 - distances[order]).tolist()  # float64, as 1.0 - float(distance) would be
        return [VectorMatch(*match) for match in zip(self.ids[order].tolist(), similarities, strict=True)]

    def lexical(self, lexemes: Sequence[str], admitted: np.ndarray, limit: int) -> list[int]:
        """The ids of the best `limit` admitted memories by BM25 over `lexemes`, ties by id."""
        # Plain Python: a query's few words are in a few memories each, where numpy's per-call cost dominates.
        bound = settings.MEMORY_LEXICAL_MAX_DOCUMENTS
        memories = max(len(self.rows), bound)
        scores: dict[int, float] = {}
        for lexeme in lexemes:
            posting = self.postings.get(lexeme)
            if posting is None or len(posting) > bound:
                continue
            documents = len(posting)
            weight = math.log(1 + (memories - documents + 0.5) / (documents + 0.5)) * (BM25_K1 + 1)
            for position, frequency in posting:
                normalised = BM25_K1 * (1 - BM25_B + BM25_B * self.lengths[position] / self.mean_length)
                scores[position] = scores.get(position, 0.0) + weight * frequency / (frequency + normalised)
        ranked = sorted((-score, self.ids_list[position]) for position, score in scores.items() if admitted[position])
        return [memory_id for _, memory_id in ranked[:limit]]


class CallerCache:
    """This process's entries, least recently used first, within MEMORY_CALLER_CACHE_MB."""

    def __init__(self) -> None:
        self._entries: OrderedDict[Owner, CallerEntry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._owed: set[Owner | None] = set()  # tokens to replace once the shared cache answers (None: everyone's)
        self._too_big: dict[Owner, float] = {}  # callers past what a copy holds, until when not to try again
        self.failure_policy = CacheFailurePolicy(
            retry_after=settings.EMBEDDING_CACHE_RETRY_AFTER,
            log_every=settings.EMBEDDING_CACHE_ERROR_LOG_EVERY,
            message="caller cache tokens unavailable, memory queries read the database",
            logger_name=__name__,
        )

    @staticmethod
    def enabled() -> bool:
        """Whether this process answers from copies."""
        return settings.MEMORY_CALLER_CACHE_MB > 0 and tokens_shared()

    def candidates(
        self,
        embedding: np.ndarray,
        query: str,
        owner: Owner,
        scope: Scope,
        limit: int,
        hybrid: bool,
        read: Mapping[str, bytes] | object | None = UNREAD,
    ) -> tuple[list[VectorMatch], list[int], dict[int, Memory]] | None:
        """hybrid_sql.candidates' answer from this process's copy of the caller, loading it when it is missing,
        outdated or expired; None when the copy cannot be trusted now (the shared cache unreachable) or the
        caller is too big to hold (the caller then takes the database path). `read` is what the embedding's
        lookup read of `token_keys(owner)` (None: the cache could not be read); by default they are read now."""
        too_big = self._too_big.get(owner)
        tokens = None if too_big is not None and too_big > time.monotonic() else self.tokens(owner, read)
        entry = None if tokens is None else self._current(owner, tokens)
        if entry is not None:
            HITS.inc()
        elif tokens is not None and (entry := self._load(owner, tokens)) is not None:
            LOADS.inc()
        else:
            TO_DATABASE.inc()
            return None
        admitted = entry.admitted(scope)
        matches = entry.dense(embedding, admitted, limit)
        terms = " ".join(query_terms(query)) if hybrid else ""
        lexical_ids = entry.lexical(query_lexemes(config(), terms), admitted, limit) if terms else []
        wanted = {match.memory_id for match in matches} | set(lexical_ids)
        memories = {memory_id: entry.memory(memory_id) for memory_id in wanted}
        return matches, lexical_ids, memories

    @fail_open(default=lambda: None)
    def tokens(self, owner: Owner, read: Mapping[str, bytes] | object | None = UNREAD) -> tuple[bytes, bytes] | None:
        """(the caller's token, everyone's), from `read` or in one round trip; a missing one is created."""
        if read is None:
            return None
        if self._owed:  # owed replacements first: a token read before them may be outdated
            self._pay_debts()
            read = UNREAD
        cache = caches[CACHE_ALIAS]
        keys = token_keys(owner)
        found = dict(cache.get_many(keys) if read is UNREAD else read)
        for key in keys:
            if key not in found:  # first use, or evicted: a new token (another process's, if it was quicker)
                token = new_token()
                created = cache.add(key, token, None if key == EVERYONE_KEY else OWNER_TOKEN_SECONDS)
                found[key] = token if created else cache.get(key)
                if found[key] is None:
                    return None
        return found[keys[0]], found[keys[1]]

    def replace_tokens(self, owners: Collection[Owner | None]) -> None:
        """New tokens for `owners` (None: everyone's), in one round trip; owed and retried while the shared cache
        is unreachable."""
        if not owners or not tokens_shared():  # even with no copies of its own: other processes may hold some
            return
        with self._lock:
            self._owed |= set(owners)
        self._pay_debts()

    @fail_open(default=lambda: None)
    def _pay_debts(self) -> None:
        with self._lock:
            owed, self._owed = self._owed, set()
        try:
            tokens = {token_key(owner): new_token() for owner in owed if owner is not None}
            if None in owed:
                caches[CACHE_ALIAS].set(EVERYONE_KEY, new_token(), None)
            if tokens:
                caches[CACHE_ALIAS].set_many(tokens, OWNER_TOKEN_SECONDS)
        except Exception:
            with self._lock:
                self._owed |= owed
            raise

    def _current(self, owner: Owner, tokens: tuple[bytes, bytes]) -> CallerEntry | None:
        with self._lock:
            entry = self._entries.get(owner)
            if entry is None:
                return None
            if entry.tokens != tokens or entry.expires <= time.monotonic():
                self._remove(owner)
                return None
            self._entries.move_to_end(owner)
            return entry

    def _load(self, owner: Owner, tokens: tuple[bytes, bytes]) -> CallerEntry | None:
        """The caller's current memories, in one statement; None (and nothing kept) past the exact plan's size."""
        threshold = settings.MEMORY_HNSW_MIN_USER_MEMORIES
        budget = settings.MEMORY_CALLER_CACHE_MB * 1024 * 1024
        dimensions = Memory._meta.get_field("embedding").dimensions
        cap = min(
            threshold if threshold > 0 else MAX_COPIED_MEMORIES,
            max(1, budget // (4 * dimensions + MEMORY_OVERHEAD_BYTES)),
        )
        sql = (
            f"SELECT {result_columns('memory')}, memory.embedding, "
            "memory.search_vector::text "
            f"FROM {TABLE} AS memory WHERE memory.space_id = %s AND memory.user_id = %s "
            "AND memory.superseded_by_id IS NULL ORDER BY memory.id"
        )
        with vector_cursor() as cursor:
            cursor.execute(sql + " LIMIT %s", [owner.space_id, owner.user_id, cap], binary=True)
            rows = cursor.fetchall()
        now = time.monotonic()
        if len(rows) >= cap:
            if threshold > 0 and cap == threshold:
                plans.forget(owner)  # they outgrew the exact plan since it was chosen: the next query chooses again
            with self._lock:
                if len(self._too_big) >= MAX_TOO_BIG:
                    self._too_big.clear()
                self._too_big[owner] = now + settings.MEMORY_CALLER_CACHE_SECONDS  # not read again meanwhile
            return None
        entry = CallerEntry(tokens, rows, now + settings.MEMORY_CALLER_CACHE_SECONDS)
        if entry.nbytes > budget:
            return entry  # used for this query, not kept
        with self._lock:
            for expired in [key for key, kept in self._entries.items() if kept.expires <= now]:
                self._remove(expired)  # a forgotten caller's texts do not wait for the budget to leave
            self._remove(owner)
            self._entries[owner] = entry
            self._bytes += entry.nbytes
            while self._bytes > budget:
                self._remove(next(iter(self._entries)))
        return entry

    def _remove(self, owner: Owner) -> None:
        entry = self._entries.pop(owner, None)
        if entry is not None:
            self._bytes -= entry.nbytes

    def reset(self) -> None:
        """Back to a fresh process's state: no copies, no owed tokens, the shared cache trusted again."""
        self.drop()
        with self._lock:
            self._owed.clear()
        self.failure_policy.reset()

    def drop(self, owner: Owner | None = None) -> None:
        """Forget this process's copy of one caller, or of everyone."""
        with self._lock:
            if owner is None:
                self._entries.clear()
                self._too_big.clear()
                self._bytes = 0
            else:
                self._remove(owner)
                self._too_big.pop(owner, None)

    def info(self) -> dict[str, int]:
        with self._lock:
            return {"callers": len(self._entries), "bytes": self._bytes}


callers = CallerCache()


def caller_changed(owner: Owner, using: str = DEFAULT_DB_ALIAS) -> None:
    """`owner`'s memories change in the current transaction: this process drops its copy now, and every process
    finds the caller's token replaced once the transaction commits (one round trip for all the callers a
    transaction changed)."""
    callers.drop(owner)
    _replace_on_commit(owner, using)


def everyone_changed(using: str = DEFAULT_DB_ALIAS) -> None:
    """Every caller's memories change (re-embedding, resizing, a migration): every copy in every process goes."""
    callers.drop()
    _replace_on_commit(None, using)


def _replace_on_commit(owner: Owner | None, using: str) -> None:
    database = transaction.get_connection(using)
    if not database.in_atomic_block:
        callers.replace_tokens({owner})
        return
    # One set of callers per transaction, replaced by the first of its commit hooks to run (the others find it
    # empty). Django gives the connection a new list of hooks whenever the old one ran or was rolled back, so a
    # set tied to another list belongs to a finished transaction.
    hooks, owners = getattr(database, "changed_callers", (None, None))
    if hooks is not database.run_on_commit:
        owners = set()
        database.changed_callers = (database.run_on_commit, owners)
    owners.add(owner)
    transaction.on_commit(functools.partial(_replace_all, owners), using=using, robust=True)


def _replace_all(owners: set[Owner | None]) -> None:
    changed = set(owners)
    owners.clear()
    callers.replace_tokens(changed)


def memory_saved(sender, instance: Memory, using: str, **kwargs) -> None:
    """post_save of Memory (connected in MemoriesConfig.ready). Deletions call caller_changed themselves
    (services.delete_memory, forget_user): a post_delete receiver would make Django load every row a bulk delete
    removes, embeddings included, to send it."""
    caller_changed(instance.owner, using)


def everyone_migrated(using: str = DEFAULT_DB_ALIAS, **kwargs) -> None:
    """post_migrate of this app: a migration may have rewritten any memory."""
    everyone_changed(using)


@receiver(setting_changed)
def settings_changed(setting: str, **kwargs) -> None:
    if setting == "CACHES":  # the tests' settings fixture
        shared_cache_configured.cache_clear()
