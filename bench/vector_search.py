"""Vector search plans on PostgreSQL + pgvector: recall against exact search, and latency.

    .venv/bin/python bench/vector_search.py                      # 1,000 users x 80 + one heavy user of 20,000
    .venv/bin/python bench/vector_search.py --tiny               # seconds; what the test suite runs

Needs BENCH_DATABASE_URL (default: a `memoryplatform_bench` database on the local server, or
`memoryplatform_bench_tiny` with --tiny; created if missing, and its memories table is replaced).
Compares, per user class and in one run:
  exact  - the user's rows through the btree index, every distance computed (MATERIALIZED CTE)
  hnsw      - the shared HNSW index with iterative scans (relaxed order), filtered by user
  dedicated - the user's own partial HNSW index (memories.user_indexes), built here for every user of at
              least --dedicated-from memories (1,000) whatever MEMORY_USER_INDEX_MIN_MEMORIES says
and reports what the configured rules (MEMORY_HNSW_MIN_USER_MEMORIES, MEMORY_USER_INDEX_MIN_MEMORIES) pick.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from memories.owners import default_owner  # noqa: E402 - plain Python, no Django needed

DEFAULT_URL = "postgres://memoryplatform:memoryplatform@127.0.0.1:5432/memoryplatform_bench"


def ensure_database(url: str, fresh: bool) -> None:
    """Create the benchmark's database; `fresh` drops a previous one first (its vector column may be another size)."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        if fresh:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')


def setup_django(url: str) -> None:
    os.environ.update(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "bench-only-secret-key-long-and-varied-enough-for-debug-0-0123456789",
            "READ_DOTENV": "0",
            # OpenAI's size (1536), the production default, so the numbers compare with earlier runs.
            "EMBEDDING_PROVIDER": "hashing",
            "EMBEDDING_DIMENSIONS": "1536",
            "DJANGO_SETTINGS_MODULE": "memoryplatform.settings",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--per-user", type=int, default=80)
    parser.add_argument("--heavy", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=100, help="queries per user class")
    parser.add_argument(
        "--medium", default="1000,3000", help="sizes of extra users (comma-separated), default 1000,3000"
    )
    parser.add_argument("--ef-search", default="40,100,200", help="hnsw.ef_search values to compare")
    parser.add_argument(
        "--limit", type=int, default=15, help="neighbours per search (15: the tool's 5 x MEMORY_CANDIDATE_FACTOR)"
    )
    parser.add_argument(
        "--dedicated-from", type=int, default=1000, help="build dedicated indexes for users of this many memories up"
    )
    parser.add_argument("--tiny", action="store_true", help="20 users x 20 + a heavy user of 300, 10 queries")
    parser.add_argument("--reuse", action="store_true", help="keep the rows of a previous run of the same size")
    args = parser.parse_args()
    if args.tiny:
        args.users, args.per_user, args.heavy, args.queries, args.medium = 20, 20, 300, 10, "100"
        args.dedicated_from = 100

    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL + ("_tiny" if args.tiny else ""))
    ensure_database(url, fresh=not args.reuse)
    setup_django(url)

    import numpy as np
    from django.conf import settings
    from django.db import connection

    from bench.synthetic import HEAVY_USER, Population, load, paraphrase
    from memories import user_indexes
    from memories.models import Memory
    from memories.search_backends.pgvector import PgVectorSearch

    medium = tuple(int(size) for size in args.medium.split(",") if size)
    population = Population(users=args.users, per_user=args.per_user, heavy=args.heavy, medium=medium)
    if not (args.reuse and Memory.objects.count() == population.total):
        user_indexes.sync(user_indexes.plan_sync(1, 0))  # no dedicated index during the load
        with connection.cursor() as cursor:
            cursor.execute("DROP INDEX IF EXISTS memory_embedding_hnsw")
        seconds = load(url, population)
        print(f"loaded {population.total:,} memories in {seconds:.1f} s")
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '1GB'")
            cursor.execute(
                "CREATE INDEX memory_embedding_hnsw ON memories_memory "
                "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
            )
            cursor.execute("ANALYZE memories_memory")
        print(f"built the HNSW index in {time.perf_counter() - started:.1f} s")

    backend = PgVectorSearch()
    ef_values = [int(value) for value in args.ef_search.split(",")]
    users = population.user_ids()
    classes = [(f"ordinary ({args.per_user})", [users[i * len(users) // args.queries] for i in range(args.queries)])]
    classes += [(f"medium ({size:,})", [user] * args.queries) for user, size in population.medium_users()]
    classes.append((f"heavy ({args.heavy:,})", [HEAVY_USER] * args.queries))
    rng = np.random.default_rng(7)
    rows = []
    for label, user_list in classes:
        queries = [paraphrase(stored_vector(user, rng), rng) for user in user_list]
        exact_ids, exact_times = [], []
        for user, query in zip(user_list, queries, strict=True):
            result, timing = timed_search(backend, "exact", query, user, args.limit)
            exact_ids.append(result)
            exact_times.append(timing)
        cases = (backend, user_list, queries, exact_ids, ef_values, args.limit)
        hnsw = measure("hnsw", "MEMORY_HNSW_EF_SEARCH", *cases)
        dedicated = {}
        if len(set(user_list)) == 1 and Memory.objects.filter(user_id=user_list[0]).count() >= args.dedicated_from:
            record = user_indexes.build_user_index(default_owner(user_list[0]))
            print(f"built the dedicated index of {user_list[0]} in {record.build_seconds:.1f} s")
            dedicated = measure("dedicated", "MEMORY_USER_INDEX_EF_SEARCH", *cases)
            user_indexes.drop_user_index(default_owner(user_list[0]))
        rows.append((label, exact_times, hnsw, dedicated, rule_picks(user_list[0])))

    print()
    print(
        f"{population.total:,} memories: {args.users:,} users x {args.per_user}, one heavy user of {args.heavy:,}, "
        f"medium users of {args.medium}; {args.queries} queries per class (paraphrases of a stored memory, "
        f"cosine ~0.85); pgvector {pgvector_version()}; MEMORY_HNSW_MIN_USER_MEMORIES="
        f"{settings.MEMORY_HNSW_MIN_USER_MEMORIES:,}, MEMORY_USER_INDEX_MIN_MEMORIES="
        f"{settings.MEMORY_USER_INDEX_MIN_MEMORIES:,}"
    )
    print()
    print(f"p50 / p95 ms, recall@{args.limit} against the exact plan")
    print()
    header = " | ".join(f"shared hnsw ef={ef}" for ef in ef_values)
    header += " | " + " | ".join(f"dedicated ef={ef}" for ef in ef_values)
    print(f"| user (memories) | exact | {header} | rules pick |")
    print("|---" * (3 + 2 * len(ef_values)) + "|")
    for label, exact_times, hnsw, dedicated, plan in rows:
        cells = [cell(*hnsw[ef]) for ef in ef_values] + [cell(*dedicated[ef]) if dedicated else "—" for ef in ef_values]
        exact = f"{percentile(exact_times, 0.5):.2f} / {percentile(exact_times, 0.95):.2f}"
        print(f"| {label} | {exact} | {' | '.join(cells)} | {plan} |")


def measure(plan, ef_setting, backend, users, queries, exact_ids, ef_values, limit) -> dict:
    """ef_search -> (times, recall) of `plan`, ef_search set through the setting named `ef_setting`."""
    from django.conf import settings

    by_ef = {}
    for ef in ef_values:
        setattr(settings, ef_setting, ef)
        found, times = [], []
        for user, query in zip(users, queries, strict=True):
            result, timing = timed_search(backend, plan, query, user, limit)
            found.append(result)
            times.append(timing)
        by_ef[ef] = (times, recall_of(found, exact_ids))
    return by_ef


def stored_vector(user_id: str, rng):
    """One of the user's stored vectors, picked by `rng` (the same queries on every run)."""
    from memories.models import Memory

    vectors = Memory.objects.filter(user_id=user_id).order_by("pk").values_list("embedding", flat=True)
    return vectors[int(rng.integers(vectors.count()))]


def cell(times: list[float], recall: float) -> str:
    return f"{percentile(times, 0.5):.2f} / {percentile(times, 0.95):.2f}, {recall:.3f}"


def recall_of(found: list[list[int]], wanted: list[list[int]]) -> float:
    pairs = zip(found, wanted, strict=True)
    return statistics.mean(len(set(got) & set(want)) / max(1, len(want)) for got, want in pairs)


def rule_picks(user_id: str) -> str:
    """The plan the configured thresholds give this user (a dedicated index once it is built)."""
    from django.conf import settings

    from memories.user_indexes import current_memories

    count = current_memories(default_owner(user_id))
    if settings.MEMORY_USER_INDEX_MIN_MEMORIES and count >= settings.MEMORY_USER_INDEX_MIN_MEMORIES:
        return "dedicated"
    return "hnsw" if count >= settings.MEMORY_HNSW_MIN_USER_MEMORIES else "exact"


def timed_search(backend, plan: str, query, user_id: str, limit: int) -> tuple[list[int], float]:
    from memories.search_backends.base import Scope

    started = time.perf_counter()
    matches = backend.search_with_plan(plan, query, default_owner(user_id), Scope(), limit)
    return [match.memory_id for match in matches], 1000 * (time.perf_counter() - started)


def pgvector_version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        return cursor.fetchone()[0]


if __name__ == "__main__":
    main()
