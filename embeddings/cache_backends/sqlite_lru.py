"""An exact, shared LRU cache in one SQLite file, behind Django's cache API (the embedded default).

Every process on the machine (the server, the worker, management commands) opens the same file, so they see
the same entries and the same counters. Recency is a logical clock: each hit or write stamps the entry with
the next tick, and when an insert takes the table past MAX_ENTRIES the entries with the oldest stamps are
deleted and counted as evictions. A hit therefore refreshes recency and eviction removes exactly the least
recently used entry; the limit is a number of entries, not pages.

Values are bytes only (the embedding codec's float32 bytes): nothing is pickled.
"""

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache

from embeddings.cache_backends.base import EmbeddingCacheBackend

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    used INTEGER NOT NULL,
    expires REAL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entries_used ON entries (used);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value REAL NOT NULL) WITHOUT ROWID;
"""
# SQLite caps the number of bound parameters per statement; lookups are split into chunks below it.
MAX_PARAMS = 900


class SQLiteLRUCache(BaseCache, EmbeddingCacheBackend):
    def __init__(self, location: str, params: dict[str, Any]):
        super().__init__(params)
        self.path = Path(location)
        options = params.get("OPTIONS", {})
        self.max_entries = int(options.get("MAX_ENTRIES", params.get("MAX_ENTRIES", 100_000)))
        self._local = threading.local()
        self._schema_ready = False

    # --- connection ---------------------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        # One connection per thread and per process: a connection inherited through fork() is unsafe.
        connection = getattr(self._local, "connection", None)
        if connection is not None and self._local.pid == os.getpid():
            return connection
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        if not self._schema_ready:
            connection.executescript(SCHEMA)
            self._schema_ready = True
        self._local.connection = connection
        self._local.pid = os.getpid()
        return connection

    def _write(self, work):
        """Run `work(connection)` in one IMMEDIATE transaction (the write lock is taken up front)."""
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            result = work(connection)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return result

    @staticmethod
    def _add_counters(connection: sqlite3.Connection, counts: Mapping[str, int | float]) -> None:
        connection.executemany(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            [(name, amount) for name, amount in counts.items() if amount],
        )

    @staticmethod
    def _tick(connection: sqlite3.Connection, steps: int) -> int:
        """Advance the recency clock by `steps` and return the first new tick."""
        row = connection.execute(
            "INSERT INTO counters (name, value) VALUES ('clock', ?) "
            "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value RETURNING value",
            (steps,),
        ).fetchone()
        return int(row[0]) - steps + 1

    def _expiry(self, timeout: float | object | None) -> float | None:
        """Absolute expiry time (Unix seconds) for a Django timeout, None for no expiry."""
        expires = self.get_backend_timeout(timeout)
        return None if expires is None else float(expires)

    # --- the embedding-cache interface --------------------------------------------------------------------

    def get_many_counted(
        self, keys: Iterable[str], count: bool = True, uncounted: Iterable[str] = ()
    ) -> dict[str, bytes]:
        found = self._lookup(keys, count=count, version=None)
        uncounted = [key for key in uncounted if key not in found]
        return {**found, **self._lookup(uncounted, count=False, version=None)} if uncounted else found

    def _lookup(self, keys: Iterable[str], *, count: bool, version: int | None) -> dict[str, bytes]:
        key_map = {self.make_and_validate_key(key, version=version): key for key in keys}
        if not key_map:
            return {}

        def work(connection: sqlite3.Connection) -> dict[str, bytes]:
            now = time.time()
            found: dict[str, bytes] = {}
            expired: list[str] = []
            made_keys = list(key_map)
            for start in range(0, len(made_keys), MAX_PARAMS):
                chunk = made_keys[start : start + MAX_PARAMS]
                placeholders = ",".join("?" * len(chunk))
                for made_key, value, expires in connection.execute(
                    f"SELECT key, value, expires FROM entries WHERE key IN ({placeholders})", chunk
                ):
                    if expires is not None and expires <= now:
                        expired.append(made_key)
                    else:
                        found[made_key] = value
            if found:
                first = self._tick(connection, len(found))
                connection.executemany(
                    "UPDATE entries SET used = ? WHERE key = ?",
                    [(first + offset, made_key) for offset, made_key in enumerate(found)],
                )
            if expired:
                connection.executemany("DELETE FROM entries WHERE key = ?", [(key,) for key in expired])
            counts = {"expired": len(expired), "entries": -len(expired)}
            if count:
                counts |= {"hits": len(found), "misses": len(key_map) - len(found)}
            self._add_counters(connection, counts)
            return {key_map[made_key]: bytes(value) for made_key, value in found.items()}

        return self._write(work)

    def incr_counters(self, counts: Mapping[str, int | float]) -> None:
        self._write(lambda connection: self._add_counters(connection, counts))

    def read_counters(self) -> dict[str, float]:
        rows = self._connection().execute("SELECT name, value FROM counters").fetchall()
        return {name: value for name, value in rows if name != "clock"}

    def clear_embeddings(self) -> int:
        def work(connection: sqlite3.Connection) -> int:
            removed = connection.execute("DELETE FROM entries").rowcount
            connection.execute("UPDATE counters SET value = 0 WHERE name = 'entries'")
            return removed

        return self._write(work)

    def cache_info(self) -> dict[str, Any]:
        connection = self._connection()
        entries, size = connection.execute("SELECT COUNT(*), COALESCE(SUM(length(value)), 0) FROM entries").fetchone()
        evictions = dict(connection.execute("SELECT name, value FROM counters WHERE name = 'evictions'")).get(
            "evictions", 0
        )
        return {
            "backend": "sqlite-lru",
            "location": str(self.path),
            "entries": int(entries),
            "bytes": int(size),
            "max_entries": self.max_entries,
            "policy": "exact LRU (entry count)",
            "evictions": int(evictions),
            "evictions_scope": "this cache (exact)",
        }

    # --- Django's cache API -------------------------------------------------------------------------------

    def set_many(self, data: Mapping[str, bytes], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None):
        expires = self._expiry(timeout)
        rows = {self.make_and_validate_key(key, version=version): _as_bytes(value) for key, value in data.items()}
        if not rows:
            return []

        def work(connection: sqlite3.Connection) -> None:
            made_keys = list(rows)
            existing = 0
            for start in range(0, len(made_keys), MAX_PARAMS):
                chunk = made_keys[start : start + MAX_PARAMS]
                placeholders = ",".join("?" * len(chunk))
                existing += connection.execute(
                    f"SELECT COUNT(*) FROM entries WHERE key IN ({placeholders})", chunk
                ).fetchone()[0]
            first = self._tick(connection, len(rows))
            connection.executemany(
                "INSERT INTO entries (key, value, used, expires) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, used = excluded.used, "
                "expires = excluded.expires",
                [(made_key, value, first + offset, expires) for offset, (made_key, value) in enumerate(rows.items())],
            )
            self._add_counters(connection, {"entries": len(rows) - existing, "sets": len(rows)})
            self._evict(connection)

        self._write(work)
        return []

    def _evict(self, connection: sqlite3.Connection) -> None:
        row = connection.execute("SELECT value FROM counters WHERE name = 'entries'").fetchone()
        entries = int(row[0]) if row else 0
        excess = entries - self.max_entries
        if excess <= 0:
            return
        # Expired entries go first (they are dead anyway), then the least recently used.
        now = time.time()
        expired = connection.execute("DELETE FROM entries WHERE expires IS NOT NULL AND expires <= ?", (now,)).rowcount
        evicted = 0
        if excess - expired > 0:
            evicted = connection.execute(
                "DELETE FROM entries WHERE key IN (SELECT key FROM entries ORDER BY used LIMIT ?)",
                (excess - expired,),
            ).rowcount
        self._add_counters(connection, {"entries": -(expired + evicted), "expired": expired, "evictions": evicted})

    def set(self, key: str, value: bytes, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> None:
        self.set_many({key: value}, timeout=timeout, version=version)

    def add(self, key: str, value: bytes, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        if self.has_key(key, version=version):
            return False
        self.set(key, value, timeout=timeout, version=version)
        return True

    def get(self, key: str, default: Any = None, version: int | None = None) -> Any:
        return self._lookup([key], count=False, version=version).get(key, default)

    def get_many(self, keys: Iterable[str], version: int | None = None) -> dict[str, Any]:
        return self._lookup(keys, count=False, version=version)

    def has_key(self, key: str, version: int | None = None) -> bool:
        made_key = self.make_and_validate_key(key, version=version)
        row = self._connection().execute("SELECT expires FROM entries WHERE key = ?", (made_key,)).fetchone()
        return row is not None and (row[0] is None or row[0] > time.time())

    def touch(self, key: str, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        made_key = self.make_and_validate_key(key, version=version)
        new_expiry = self._expiry(timeout)
        return bool(
            self._write(
                lambda connection: (
                    connection.execute("UPDATE entries SET expires = ? WHERE key = ?", (new_expiry, made_key)).rowcount
                )
            )
        )

    def delete(self, key: str, version: int | None = None) -> bool:
        return self.delete_many([key], version=version) > 0

    def delete_many(self, keys: Iterable[str], version: int | None = None) -> int:
        made_keys = [(self.make_and_validate_key(key, version=version),) for key in keys]

        def work(connection: sqlite3.Connection) -> int:
            removed = sum(connection.execute("DELETE FROM entries WHERE key = ?", key).rowcount for key in made_keys)
            self._add_counters(connection, {"entries": -removed})
            return removed

        return self._write(work)

    def clear(self) -> None:
        self.clear_embeddings()

    def close(self, **kwargs: Any) -> None:
        # Connections stay open for the life of the thread: reopening per request would cost more than it saves.
        return None


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if not isinstance(value, bytes):
        raise TypeError(f"the embedding cache stores bytes only, got {type(value).__name__}")
    return value
