"""Vector search plans on PostgreSQL + pgvector: recall@10 against exact search, and latency.

    .venv/bin/python bench/vector_search.py                      # 1,000 users x 80 + one heavy user of 20,000
    .venv/bin/python bench/vector_search.py --tiny               # seconds; what the test suite runs

Needs BENCH_DATABASE_URL (default: a `memoryplatform_bench` database on the local server, or
`memoryplatform_bench_tiny` with --tiny; created if missing, and its memories table is replaced).
Compares, per user class and in one run:
  exact  - the user's rows through the btree index, every distance computed (MATERIALIZED CTE)
  hnsw   - the HNSW index with iterative scans (relaxed order), filtered by user
and reports what the configured rule (MEMORY_HNSW_MIN_USER_MEMORIES) picks.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgres://memoryplatform:memoryplatform@127.0.0.1:5432/memoryplatform_bench"


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')


def setup_django(url: str) -> None:
    os.environ.update(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "bench",
            "READ_DOTENV": "0",
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
    parser.add_argument("--tiny", action="store_true", help="20 users x 20 + a heavy user of 300, 10 queries")
    parser.add_argument("--reuse", action="store_true", help="keep the rows of a previous run of the same size")
    args = parser.parse_args()
    if args.tiny:
        args.users, args.per_user, args.heavy, args.queries, args.medium = 20, 20, 300, 10, "100"

    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL + ("_tiny" if args.tiny else ""))
    ensure_database(url)
    setup_django(url)

    import numpy as np
    from django.conf import settings
    from django.db import connection

    from bench.synthetic import HEAVY_USER, Population, load, paraphrase
    from memories.models import Memory
    from memories.search_backends.pgvector import PgVectorSearch

    medium = tuple(int(size) for size in args.medium.split(",") if size)
    population = Population(users=args.users, per_user=args.per_user, heavy=args.heavy, medium=medium)
    if not (args.reuse and Memory.objects.count() == population.total):
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
        queries = [
            paraphrase(Memory.objects.filter(user_id=user).order_by("?").values_list("embedding", flat=True)[0], rng)
            for user in user_list
        ]
        exact_ids, exact_times = [], []
        for user, query in zip(user_list, queries, strict=True):
            result, timing = timed_search(backend, "exact", query, user)
            exact_ids.append(result)
            exact_times.append(timing)
        hnsw = {}
        for ef in ef_values:
            settings.MEMORY_HNSW_EF_SEARCH = ef
            found, times = [], []
            for user, query in zip(user_list, queries, strict=True):
                result, timing = timed_search(backend, "hnsw", query, user)
                found.append(result)
                times.append(timing)
            recall = statistics.mean(
                len(set(got) & set(want)) / max(1, len(want)) for got, want in zip(found, exact_ids, strict=True)
            )
            hnsw[ef] = (times, recall)
        rows.append((label, exact_times, hnsw, backend.choose_plan(user_list[0])))

    print()
    print(
        f"{population.total:,} memories: {args.users:,} users x {args.per_user}, one heavy user of {args.heavy:,}, "
        f"medium users of {args.medium}; {args.queries} queries per class (paraphrases of a stored memory, "
        f"cosine ~0.85); pgvector {pgvector_version()}; MEMORY_HNSW_MIN_USER_MEMORIES="
        f"{settings.MEMORY_HNSW_MIN_USER_MEMORIES:,}"
    )
    print()
    header = " | ".join(f"hnsw ef={ef}: p50 / p95 ms, recall@10" for ef in ef_values)
    print(f"| user (memories) | exact p50 / p95 ms | {header} | rule picks |")
    print("|---" * (3 + len(ef_values)) + "|")
    for label, exact_times, hnsw, plan in rows:
        cells = " | ".join(
            f"{percentile(times, 0.5):.2f} / {percentile(times, 0.95):.2f}, {recall:.3f}"
            for times, recall in hnsw.values()
        )
        print(
            f"| {label} | {percentile(exact_times, 0.5):.2f} / {percentile(exact_times, 0.95):.2f} | {cells} | {plan} |"
        )


def timed_search(backend, plan: str, query, user_id: str) -> tuple[list[int], float]:
    started = time.perf_counter()
    matches = backend.search_with_plan(plan, query, user_id, None, 10)
    return [match.memory_id for match in matches], 1000 * (time.perf_counter() - started)


def pgvector_version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        return cursor.fetchone()[0]


if __name__ == "__main__":
    main()
