"""Synthetic memories for the benchmarks: many ordinary users and one heavy user, clustered by topic.

Real embeddings are not uniform noise: a caller's memories cluster around a few topics. Each memory here is
a topic direction plus as much random noise (cosine ~0.7 to its topic), each user draws from 8 topics out of
a shared pool, and queries are drawn the same way, so the nearest neighbours are meaningful and HNSW faces
the same kind of structure it meets in production. Rows are loaded with binary COPY.
"""

import hashlib
import os
import time
from dataclasses import dataclass

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

from memories.owners import DEFAULT_SPACE_ID

DIMENSIONS = int(os.environ.get("EMBEDDING_DIMENSIONS", "1536"))  # the size of the database the rows go into
TOPICS = 400
TOPICS_PER_USER = 8
SUBTOPICS = 64
HEAVY_USER = "heavy-user"


@dataclass
class Population:
    users: int
    per_user: int
    heavy: int
    seed: int = 42
    medium: tuple[int, ...] = ()  # extra users of these sizes, to locate the exact/HNSW crossover

    @property
    def total(self) -> int:
        return self.users * self.per_user + self.heavy + sum(self.medium)

    def medium_users(self) -> list[tuple[str, int]]:
        return [(f"medium-{size}", size) for size in self.medium]

    def user_ids(self) -> list[str]:
        return [f"user-{index:05d}" for index in range(self.users)]


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


class TopicSpace:
    """The shared topic directions (fixed by `seed`) and a noise generator (`noise_seed`)."""

    def __init__(self, seed: int, noise_seed: int | None = None):
        self.topics = unit(np.random.default_rng(seed).standard_normal((TOPICS, DIMENSIONS)))
        self.rng = np.random.default_rng(seed + 1 if noise_seed is None else noise_seed)

    def user_topics(self, user_id: str) -> np.ndarray:
        digest = int.from_bytes(hashlib.sha256(user_id.encode()).digest()[:8], "little")
        return np.random.default_rng(digest).choice(TOPICS, TOPICS_PER_USER, replace=False)

    def samples(self, topic_ids: np.ndarray, count: int) -> np.ndarray:
        """Memories: topic + a sub-topic of it + noise, so neighbours range from near-paraphrases to strangers."""
        chosen = self.topics[self.rng.choice(topic_ids, count)]
        subtopics = unit(self.rng.standard_normal((SUBTOPICS, DIMENSIONS)))[self.rng.integers(0, SUBTOPICS, count)]
        noise = unit(self.rng.standard_normal((count, DIMENSIONS)))
        return unit(chosen + 0.7 * subtopics + 0.45 * noise)


COPY_COLUMNS = (
    "space_id, user_id, text, text_hash, sector, extra_sectors, embedding, embedding_model, salience, created_at, "
    "last_accessed_at, access_count, source_conversation_id, source_turns, metadata, kind, occurred_at"
)
COPY_TYPES = [
    "int8",
    "text",
    "text",
    "text",
    "text",
    "jsonb",
    "vector",
    "text",
    "float8",
    "timestamptz",
    "timestamptz",
    "int4",
    "text",
    "jsonb",
    "jsonb",
    "text",
    "timestamptz",
]


def copy_memories(dsn: str, rows, table: str = "memories_memory") -> None:
    """Replace the table's rows with (user_id, text, vector, model) rows, by binary COPY."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        register_vector(connection)
        connection.execute(f"TRUNCATE {table} RESTART IDENTITY CASCADE")
        copy_sql = f"COPY {table} ({COPY_COLUMNS}) FROM STDIN WITH (FORMAT BINARY)"
        with connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
            copy.set_types(COPY_TYPES)
            now = time.time()
            for index, (user_id, text, vector, model) in enumerate(rows):
                moment = _timestamp(now - (index % 365) * 86400)
                copy.write_row(
                    [
                        DEFAULT_SPACE_ID,
                        user_id,
                        text,
                        hashlib.sha256(text.encode()).hexdigest(),
                        "semantic",
                        psycopg.types.json.Jsonb([]),
                        vector,
                        model,
                        0.5,
                        moment,
                        moment,
                        0,
                        "",
                        psycopg.types.json.Jsonb([]),
                        psycopg.types.json.Jsonb({}),
                        "utterance",
                        moment,
                    ]
                )
        connection.execute(f"ANALYZE {table}")


def user_batches(population: Population) -> list[tuple[str, int]]:
    batches = [(user_id, population.per_user) for user_id in population.user_ids()]
    return [*batches, (HEAVY_USER, population.heavy), *population.medium_users()]


def load(dsn: str, population: Population, table: str = "memories_memory") -> float:
    """Replace the table's rows with the synthetic population; returns the seconds it took."""
    started = time.perf_counter()
    space = TopicSpace(population.seed)

    def rows():
        for user_id, count in user_batches(population):
            for index, vector in enumerate(space.samples(space.user_topics(user_id), count)):
                yield user_id, f"synthetic memory {index} of {user_id}", vector, "synthetic"

    copy_memories(dsn, rows(), table)
    return time.perf_counter() - started


def paraphrase(vector: np.ndarray, rng: np.random.Generator, noise: float = 0.6) -> np.ndarray:
    """A query that rephrases a stored memory: cosine about 0.85 to it."""
    return unit(vector + noise * unit(rng.standard_normal(vector.shape)))


def _timestamp(seconds: float):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC)


def load_with_orm(population: Population, batch_size: int = 2000) -> float:
    """The same population through the ORM (any database, e.g. the embedded SQLite); returns seconds."""
    from memories.models import Memory

    started = time.perf_counter()
    space = TopicSpace(population.seed)
    Memory.objects.all().delete()
    pending: list = []
    for user_id, count in user_batches(population):
        for index, vector in enumerate(space.samples(space.user_topics(user_id), count)):
            text = f"synthetic memory {index} of {user_id}"
            pending.append(
                Memory(
                    user_id=user_id,
                    text=text,
                    text_hash=hashlib.sha256(text.encode()).hexdigest(),
                    embedding=vector,
                    embedding_model="synthetic",
                    sector="semantic",
                )
            )
            if len(pending) >= batch_size:
                Memory.objects.bulk_create(pending)
                pending = []
    Memory.objects.bulk_create(pending)
    return time.perf_counter() - started


def phone_number(index: int) -> str:
    """A valid North American number per synthetic user (E.164)."""
    return f"+1612555{index:04d}"


SYLLABLES = ["ka", "lo", "mi", "ren", "tas", "vo", "pel", "qu", "dan", "sor", "bi", "neth", "gra", "ul", "fex", "zo"]
WORDS_PER_TOPIC = 24


class TextSpace:
    """Synthetic memory *texts* per topic, embedded by the hashing provider: queries written from a
    user's topics then land near that user's memories, as real questions land near real memories."""

    def __init__(self, seed: int):
        rng = np.random.default_rng(seed)
        self.topic_words = [
            ["".join(rng.choice(SYLLABLES, rng.integers(2, 4))) for _ in range(WORDS_PER_TOPIC)] for _ in range(TOPICS)
        ]
        self.rng = np.random.default_rng(seed + 1)
        self.topics = TopicSpace(seed)

    def memory_text(self, user_id: str, index: int) -> str:
        topic = self.topic_words[self.rng.choice(self.topics.user_topics(user_id))]
        words = self.rng.choice(topic, self.rng.integers(6, 11))
        return f"memory {index}: " + " ".join(words)

    def query_text(self, user_id: str, rng: np.random.Generator) -> str:
        topic = self.topic_words[rng.choice(self.topics.user_topics(user_id))]
        return " ".join(rng.choice(topic, 3, replace=False))


def load_texts(dsn: str, population: Population, table: str = "memories_memory") -> float:
    """Like `load`, with memory texts embedded by the hashing provider instead of synthetic vectors."""
    from embeddings.providers.hashing import LocalHashingProvider

    started = time.perf_counter()
    space = TextSpace(population.seed)
    provider = LocalHashingProvider(dimensions=DIMENSIONS)

    def rows():
        for user_id, count in user_batches(population):
            for index in range(count):
                text = space.memory_text(user_id, index)
                yield user_id, text, provider.vector(text), "local-hash-v1"

    copy_memories(dsn, rows(), table)
    return time.perf_counter() - started
