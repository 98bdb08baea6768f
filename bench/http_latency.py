"""HTTP latency and throughput of the memory query tool and the conversation-initiation webhook.

    .venv/bin/python bench/http_latency.py                  # both stacks, 100k memories, 1/8/32 clients
    .venv/bin/python bench/http_latency.py --stack production --duration 20
    .venv/bin/python bench/http_latency.py --tiny           # seconds; what the test suite runs

gunicorn (gunicorn.conf.py: 2 gthread workers x 8 threads) serves the project; wrk (Debian package `wrk`)
drives it from this machine.
Data: 1,000 users x 80 synthetic memories plus one heavy user of 20,000 (100,000 memories), a caller
identity per user, the embedding cache warm for every query text and prewarm query (as in production after
a few calls). On PostgreSQL the memories are texts drawn from each user's topics and embedded by the local
provider, and each query is three words of one of the user's topics, so queries land near the user's
memories as real ones do (HNSW behaves very differently on queries unrelated to the data); on the
embedded stack synthetic vectors are loaded (the exact numpy search costs the same whatever they hold).
Production stack: PostgreSQL + pgvector (BENCH_DATABASE_URL, default the
`memoryplatform_bench` database, whose memories are replaced) and Redis (BENCH_REDIS_URL, default database
12, flushed); the heavy user gets a dedicated HNSW index (`sync_user_indexes`, as the worker would after
their calls), and is measured once more after `sync_user_indexes --max-indexes 0` dropped it, on the shared
index only. Ordinary users are measured twice more on the production stack, side by side: with every query
loading the caller's copy of their memories (MEMORY_CALLER_CACHE_SECONDS=0: a caller's first query), and with
no copies (MEMORY_CALLER_CACHE_MB=0: the hybrid statement every time). Embedded stack: SQLite and the local LRU
cache in a temporary folder.
"""

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.environment import server_environment  # noqa: E402

DEFAULT_DATABASE = "postgres://memoryplatform:memoryplatform@127.0.0.1:5432/memoryplatform_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/12"
SECRET = "bench-secret"
WRK_SCRIPT = """
local bodies = {BODIES}
local counter = 0
request = function()
  counter = counter + 1
  if #bodies == 0 then
    return wrk.format("GET", "{PATH}")
  end
  return wrk.format("POST", "{PATH}", {["Content-Type"] = "application/json", ["X-Memory-Secret"] = "{SECRET}"},
                    bodies[(counter % #bodies) + 1])
end
done = function(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  io.write(string.format("RESULT %d %.6f %.3f %.3f %.3f %d\\n", summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000, errors))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stack_env(stack: str, data_dir: Path, database_url: str, redis_url: str) -> dict:
    """The server's environment: the hashing stand-in at 384 dimensions (the local model's size) embeds the 100k
    texts in seconds; every query's embedding is cached before the runs, so the model never runs during them."""
    env = server_environment(
        data_dir,
        ELEVENLABS_TOOL_SECRETS=SECRET,
        ELEVENLABS_INITIATION_SECRETS=SECRET,
        EMBEDDING_PROVIDER="hashing",
        EMBEDDING_DIMENSIONS="384",
    )
    if stack == "production":
        env.update({"DATABASE_URL": database_url, "REDIS_URL": redis_url})
    return env


def prepare(
    stack: str, env: dict, users: int, per_user: int, heavy: int, queries: list[str], dedicated_from: int
) -> None:
    """Load the data and warm the cache, in a child process set up exactly like the server."""
    code = f"""
import sys; sys.path.insert(0, {str(ROOT)!r})
import django; django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.db import connection
from bench.synthetic import HEAVY_USER, Population, load_texts, load_with_orm, phone_number
from embeddings.cache import get_embedding_cache
from embeddings.generation import generate_embeddings_batch
from embeddings.prewarm import prewarm_queries
from calls.models import CallerIdentity
population = Population(users={users}, per_user={per_user}, heavy={heavy})
if connection.vendor == "postgresql":
    from django.db import connection as c
    from memories import user_indexes
    user_indexes.sync(user_indexes.plan_sync(1, 0))  # no dedicated index during the load
    with c.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS memory_embedding_hnsw")
    seconds = load_texts({env.get("DATABASE_URL", "")!r}, population)
    with c.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute("CREATE INDEX memory_embedding_hnsw ON memories_memory USING hnsw "
                       "(embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)")
        cursor.execute("VACUUM (ANALYZE) memories_memory")  # as autovacuum would soon: not during the runs
    # What the worker does after the calls that make a user heavy (the load bypassed them).
    call_command("sync_user_indexes", "--min-memories", str({dedicated_from}))
else:
    seconds = load_with_orm(population)
CallerIdentity.objects.all().delete()
CallerIdentity.objects.bulk_create(
    [CallerIdentity(phone_number=phone_number(i), user_id=user) for i, user in enumerate(population.user_ids())]
    + [CallerIdentity(phone_number=phone_number(9999), user_id=HEAVY_USER)]
)
get_embedding_cache().clear()
generate_embeddings_batch({queries!r})
prewarm_queries()
print(f"loaded {{population.total}} memories in {{seconds:.1f}} s")
"""
    subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True)


def manage(env: dict, *command: str) -> None:
    subprocess.run([sys.executable, "manage.py", *command], env=env, cwd=ROOT, check=True)


def vacuum(env: dict) -> None:
    """VACUUM the memories table before each scenario, as autovacuum would between them: the runs reinforce
    the memories they return, and the dead row versions they leave behind would slow the next scenario
    (CI's PostgreSQL here runs with autovacuum off)."""
    import psycopg

    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as connection:
        connection.execute("VACUUM (ANALYZE) memories_memory")


def start_gunicorn(env: dict, workers: int, threads: int) -> tuple[subprocess.Popen, int]:
    """gunicorn as gunicorn.conf.py configures it (gthread), with `workers` processes of `threads` threads."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "memoryplatform.wsgi", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env={**env, "WEB_WORKERS": str(workers), "WEB_THREADS": str(threads), "WEB_ACCESS_LOG": ""},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                if response.status == 200:
                    return process, port
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("gunicorn did not become ready")


def wait_until_idle(port: int, workers: int, timeout: float = 300) -> None:
    """Wait until `workers` concurrent /healthz (every thread of every process) are all answered at once: requests
    wrk left queued (it stops sending, the server goes on serving what it accepted) would otherwise be measured as
    the next row's latency. A heavy user on the embedded stack leaves several seconds of them after 32 clients."""
    from concurrent.futures import ThreadPoolExecutor

    def quick(_) -> bool:
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=timeout) as response:
                response.read()
        except OSError:
            return False
        return time.perf_counter() - started < 0.05

    deadline = time.monotonic() + timeout
    with ThreadPoolExecutor(workers) as pool:
        while time.monotonic() < deadline:
            if all(pool.map(quick, range(workers))):
                return
            time.sleep(0.2)
    raise RuntimeError("the server did not become idle")


def run_wrk(port: int, path: str, bodies: list[str], clients: int, seconds: float) -> dict:
    script = WRK_SCRIPT.replace("{BODIES}", "{" + ", ".join(json.dumps(body) for body in bodies) + "}")
    script = script.replace("{PATH}", path).replace("{SECRET}", SECRET)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        command = [
            "wrk",
            "-t",
            str(min(clients, 2)),
            "-c",
            str(clients),
            "-d",
            f"{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            handle.name,
            f"http://127.0.0.1:{port}",
        ]
        finished = subprocess.run(command, capture_output=True, text=True)
        if finished.returncode != 0:
            raise RuntimeError(f"wrk failed: {finished.stderr or finished.stdout}")
        output = finished.stdout
    finally:
        os.unlink(handle.name)
    match = re.search(r"RESULT (\d+) ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+) (\d+)", output)
    if not match:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    requests, duration, p50, p95, p99, errors = match.groups()
    return {
        "requests": int(requests),
        "rps": int(requests) / float(duration),
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "errors": int(errors),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", choices=["both", "production", "embedded"], default="both")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn process (gthread)")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--per-user", type=int, default=80)
    parser.add_argument("--heavy", type=int, default=20_000)
    parser.add_argument(
        "--dedicated-from",
        type=int,
        default=10_000,
        help="users of this many memories get a dedicated index (MEMORY_USER_INDEX_MIN_MEMORIES; a huge value: none)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="the bare endpoint and ordinary users' memory query are measured this many times each, alternately "
        "(their rows are the medians; the ratios are per round)",
    )
    parser.add_argument("--tiny", action="store_true", help="20 users x 10 + heavy 200, 1 client, 1 s, 1 round")
    args = parser.parse_args()
    if args.tiny:
        args.users, args.per_user, args.heavy, args.clients, args.duration, args.rounds = 20, 10, 200, "1", 1.0, 1
        args.dedicated_from = 200
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk (scripts/install-services does it)")
    clients = [int(value) for value in args.clients.split(",")]
    stacks = ["production", "embedded"] if args.stack == "both" else [args.stack]
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE + ("_tiny" if args.tiny else ""))
    redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS)

    from bench.synthetic import HEAVY_USER, TextSpace

    text_space, rng = TextSpace(42), np.random.default_rng(11)
    normal_users = [f"user-{(i * 37) % args.users:05d}" for i in range(200)]
    normal_bodies = [
        json.dumps({"query": text_space.query_text(user, rng), "user_id": user, "limit": 5}) for user in normal_users
    ]
    heavy_bodies = [
        json.dumps({"query": text_space.query_text(HEAVY_USER, rng), "user_id": HEAVY_USER, "limit": 5})
        for _ in range(50)
    ]
    query_texts = [json.loads(body)["query"] for body in normal_bodies + heavy_bodies]
    initiation_bodies = [
        json.dumps(
            {
                "caller_id": f"+1612555{(i * 37) % args.users:04d}",
                "agent_id": "agent_bench",
                "called_number": "+18005550199",
                "call_sid": f"CA{i}",
            }
        )
        for i in range(200)
    ]
    scenarios = [
        ("bare endpoint (/healthz)", "-", "/healthz", [], clients),
        ("memory query", "ordinary user", "/tools/memory-query", normal_bodies, clients),
        ("memory query", "heavy user", "/tools/memory-query", heavy_bodies, clients),
        (
            "conversation initiation",
            "ordinary user",
            "/webhooks/elevenlabs/conversation-initiation",
            initiation_bodies,
            clients,
        ),
    ]
    results, ratios = [], []
    for stack in stacks:
        if stack == "production":
            _ensure_database(database_url)
        data_dir = Path(tempfile.mkdtemp(prefix=f"bench-http-{stack}-"))
        env = stack_env(stack, data_dir, database_url, redis_url)
        if stack == "production":
            import redis

            redis.Redis.from_url(redis_url).flushdb()
        started = time.perf_counter()
        prepare(stack, env, args.users, args.per_user, args.heavy, query_texts, args.dedicated_from)
        print(f"{stack}: prepared in {time.perf_counter() - started:.0f} s", flush=True)
        runs = [({}, scenarios)]
        if stack == "production":
            # Ordinary users side by side in the same run: every query loading the caller's copy (what the first
            # query of a caller costs), and no copies at all (the hybrid statement on every query).
            ordinary = scenarios[1][2:]
            runs.append(
                (
                    {"MEMORY_CALLER_CACHE_SECONDS": "0"},
                    [("memory query", "ordinary user, copy loaded for every query", *ordinary)],
                )
            )
            runs.append(({"MEMORY_CALLER_CACHE_MB": "0"}, [("memory query", "ordinary user, no copies", *ordinary)]))
            # The heavy user once more without their dedicated index (dropped before this last run).
            runs.append(({}, [("memory query", "heavy user, shared index only", *scenarios[2][2:])]))
        try:
            for number, (overrides, run) in enumerate(runs):
                if number == len(runs) - 1 and stack == "production":
                    manage(env, "sync_user_indexes", "--max-indexes", "0")  # drops the dedicated index
                process, port = start_gunicorn({**env, **overrides}, args.workers, args.threads)
                try:
                    if number == 0:  # the targets' two rows first, side by side
                        rows, stack_ratios = side_by_side(port, env, stack, run[:2], clients, args)
                        results += rows
                        ratios.append((stack, stack_ratios))
                        run = run[2:]
                    for endpoint, who, path, bodies, client_counts in run:
                        if stack == "production":
                            vacuum(env)
                        # Warm-up, not reported: 8 connections, so that every worker (each has its own socket,
                        # gunicorn.conf.py's reuse_port) serves some of them and loads its copies of the callers.
                        run_wrk(port, path, bodies, 8, min(2.0, args.duration))
                        for count in client_counts:
                            wait_until_idle(port, args.workers * args.threads)
                            result = run_wrk(port, path, bodies, count, args.duration)
                            results.append((stack, endpoint, who, count, result))
                            report(stack, endpoint, who, count, result)
                finally:
                    process.terminate()
                    process.wait(timeout=30)
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)

    total = args.users * args.per_user + args.heavy
    print()
    print(
        f"{total:,} memories ({args.users:,} users x {args.per_user} + one heavy user of {args.heavy:,}); "
        f"gunicorn {args.workers} gthread workers x {args.threads} threads; wrk, {args.duration:g} s per row; "
        "warm embedding cache"
    )
    print()
    print("| stack | endpoint | user | clients | p50 ms | p95 ms | p99 ms | req/s | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    for stack, endpoint, who, count, result in results:
        print(
            f"| {stack} | {endpoint} | {who} | {count} | {result['p50']:.2f} | {result['p95']:.2f} | "
            f"{result['p99']:.2f} | {result['rps']:.0f} | {result['errors']} |"
        )
    if args.rounds > 1:
        print(
            f"\nRows of the bare endpoint and ordinary users' memory query: medians of {args.rounds} alternate rounds."
        )
    for stack, (throughput, latency) in ratios:
        print()
        for name, values in (
            (
                f"memory query / bare endpoint, req/s at {max(clients)} client{'s' if max(clients) > 1 else ''}",
                throughput,
            ),
            ("memory query / bare endpoint, p50 at 1 client", latency),
        ):
            if values:
                print(
                    f"{stack}: {name}: median {statistics.median(values):.3f} (rounds: "
                    + ", ".join(f"{value:.3f}" for value in values)
                    + ")"
                )


def report(stack: str, endpoint: str, who: str, count: int, result: dict) -> None:
    print(
        f"{stack} | {endpoint} | {who} | {count} clients | p95 {result['p95']:.2f} ms | {result['rps']:.0f} req/s",
        flush=True,
    )


def side_by_side(port: int, env: dict, stack: str, pair: list, clients: list[int], args) -> tuple[list, tuple]:
    """The bare endpoint and ordinary users' memory query, alternately, `args.rounds` times per client count.

    This machine's speed drifts within minutes by more than the differences these rows show (docs/benchmarks.md);
    two neighbouring measurements drift together, so each round gives its own ratio. Returns the rows (medians of
    the rounds) and the per-round ratios: throughput at the most clients, p50 at 1 client.
    """
    for _, _, path, bodies, _ in pair:  # warm-up, not reported (and each worker loads its copies of the callers)
        run_wrk(port, path, bodies, 8, min(2.0, args.duration))
    samples: dict[tuple[int, int], list[dict]] = {}
    for count in clients:
        for number in range(args.rounds):
            for index in (0, 1) if number % 2 == 0 else (1, 0):
                endpoint, who, path, bodies, _ = pair[index]
                if stack == "production" and index == 1:
                    vacuum(env)
                wait_until_idle(port, args.workers * args.threads)
                result = run_wrk(port, path, bodies, count, args.duration)
                samples.setdefault((index, count), []).append(result)
                report(stack, endpoint, who, count, result)
    rows = []
    for index, (endpoint, who, *_) in enumerate(pair):
        for count in clients:
            runs = samples[(index, count)]
            median = {name: statistics.median(run[name] for run in runs) for name in ("p50", "p95", "p99", "rps")}
            rows.append((stack, endpoint, who, count, {**median, "errors": sum(run["errors"] for run in runs)}))
    most = max(clients)
    throughput = [tool["rps"] / bare["rps"] for bare, tool in zip(samples[(0, most)], samples[(1, most)], strict=True)]
    latency = []
    if 1 in clients:
        latency = [tool["p50"] / bare["p50"] for bare, tool in zip(samples[(0, 1)], samples[(1, 1)], strict=True)]
    return rows, (throughput, latency)


def _ensure_database(url: str) -> None:
    """A fresh database each run: its vector column takes this run's size at the first migrate."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


if __name__ == "__main__":
    main()
