"""Faults, measured: nothing acknowledged is lost or duplicated, and slow parts never hold the phone.

    .venv/bin/python bench/faults.py                       # all three sections
    .venv/bin/python bench/faults.py --section chaos --events 300 --kills 4 --outage 8
    .venv/bin/python bench/faults.py --tiny                # seconds; what the test suite runs

1. chaos (production stack: PostgreSQL + Redis): gunicorn and two `run_worker` processes reach PostgreSQL through a
   TCP proxy (testkit.tcp_proxy). A sender posts `--events` signed post-call webhooks (each retried on a non-2xx,
   up to 5 times with backoff, as ElevenLabs does when retries are on) while the workers are killed with SIGKILL
   `--kills` times (restarted a second later) and the database is refused for `--outage` seconds; a probe asks the
   memory tool throughout. Then it waits for the workers alone to finish. Reported: acknowledged, processed, lost
   (acknowledged, never processed), duplicated (a memory stored twice), stuck, and the tool's p95 and answers.
   Leases are short here (WEBHOOK_LEASE_SECONDS=10 instead of 300) so a killed worker's event comes back quickly.
2. slow provider (production stack): the embedding provider answers after 10 s. Four memory queries that miss the
   cache run at once while one client measures the conversation initiation and /healthz; gunicorn with 2 sync
   workers side by side with 2 gthread workers x 8 threads (gunicorn.conf.py).
3. busy embedded stack: `--burst` post-call webhooks from 8 concurrent senders to the development server that
   `scripts/run` starts (and to gunicorn), with the in-process worker processing them meanwhile (SQLite).
"""

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testkit.elevenlabs import (  # noqa: E402
    INITIATION_SECRET,
    INITIATION_URL,
    POST_CALL_URL,
    TOOL_SECRET,
    TOOL_URL,
    encode,
    secret_settings,
    signed_headers,
    transcription_payload,
)
from testkit.fake_openai import FakeOpenAIServer  # noqa: E402
from testkit.processes import DevelopmentServer, Gunicorn, Worker  # noqa: E402
from testkit.tcp_proxy import TCPProxy  # noqa: E402

DEFAULT_DATABASE = "postgres://memoryplatform:memoryplatform@127.0.0.1:5432/memoryplatform_faults"
DEFAULT_REDIS = "redis://127.0.0.1:6379/11"
SECRET_KEY = "bench-only-secret-key-long-and-varied-enough-for-debug-0-0123456789"
FAST_CLOCKS = {
    "WEBHOOK_LEASE_SECONDS": "10",
    "WEBHOOK_SWEEP_SECONDS": "1",
    "WEBHOOK_REQUEUE_AFTER_SECONDS": "5",
    "WEBHOOK_RETRY_BASE_SECONDS": "1",
    "WORKER_HEARTBEAT_SECONDS": "1",
    "WORKER_STALE_SECONDS": "5",
    "WORKER_DATABASE_RETRY_MAX_SECONDS": "2",
}


def base_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        **{key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")},
        "DJANGO_SETTINGS_MODULE": "memoryplatform.settings",
        "READ_DOTENV": "0",
        "DEBUG": "0",
        "SECRET_KEY": SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "WARNING",
        "DATA_DIR": str(data_dir),
        "TASKS_IN_PROCESS_WORKER": "0",
        **{name: ",".join(values) for name, values in secret_settings().items()},
    }
    env.update(extra)
    return env


def post(url: str, path: str, body: bytes, headers: dict, timeout: float = 30) -> tuple[int, float, dict]:
    """(status, seconds, JSON answer); status 0 when the connection failed."""
    request = urllib.request.Request(url + path, data=body, headers={"Content-Type": "application/json", **headers})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, time.perf_counter() - started, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, time.perf_counter() - started, {}
    except OSError:
        return 0, time.perf_counter() - started, {}


def get(url: str, timeout: float = 30) -> tuple[int, float]:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read()
            return response.status, time.perf_counter() - started
    except urllib.error.HTTPError as error:
        return error.code, time.perf_counter() - started
    except OSError:
        return 0, time.perf_counter() - started


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def call_body(index: int, prefix: str) -> bytes:
    lines = (
        f"My name is caller {index} and I live at {index} Elm Street.",
        f"I prefer email, and my order {index} arrived broken.",
        "Thanks, bye.",
    )
    return encode(
        transcription_payload(
            conversation_id=f"conv_{prefix}_{index}", phone=None, user_id=f"usr_{prefix}_{index}", caller_lines=lines
        )
    )


def migrate(env: dict) -> None:
    import subprocess

    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True)


def reset_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def count_rows(url: str, sql: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(url) as connection:
        return connection.execute(sql).fetchall()


# --- 1. chaos -------------------------------------------------------------------------------------------------


def chaos(args, database_url: str, redis_url: str) -> dict:
    import redis

    reset_database(database_url)
    redis.Redis.from_url(redis_url).flushdb()
    data_dir = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    provider = FakeOpenAIServer(dimensions=1536).start()
    provider.delay = 0.05  # a real provider's latency: workers are often mid-request when killed
    host, port = database_url.split("@", 1)[1].split("/", 1)[0].split(":")
    proxy = TCPProxy(host, int(port)).start()
    proxied_url = database_url.replace(f"@{host}:{port}/", f"@127.0.0.1:{proxy.port}/")
    env = base_env(
        data_dir,
        DATABASE_URL=proxied_url,
        REDIS_URL=redis_url,
        OPENAI_BASE_URL=provider.base_url,
        OPENAI_API_KEY="sk-bench",
        EMBEDDING_PROVIDER="openai",
        EMBEDDING_MODEL="text-embedding-3-small",
        EMBEDDING_DIMENSIONS="1536",
        EMBEDDING_MAX_RETRIES="1",
        DATABASE_CONNECT_TIMEOUT="2",
        **FAST_CLOCKS,
    )
    migrate({**env, "DATABASE_URL": database_url})
    server = Gunicorn({**env, "WEB_WORKERS": "2", "WEB_THREADS": "8"}).start()
    workers = [Worker(env, str(data_dir / f"heartbeat-{n}.json"), interval=0.2).start() for n in range(2)]
    acknowledged: set[int] = set()
    refused_for_good: list[int] = []
    tool_latencies: list[float] = []
    tool_statuses: dict[int, int] = {}
    done = threading.Event()

    def send_all() -> None:
        gap = args.seconds / args.events
        for index in range(args.events):
            body = call_body(index, "chaos")
            for attempt in range(5):
                status, _, _ = post(server.url, POST_CALL_URL, body, signed_headers(body))
                if status == 200:
                    acknowledged.add(index)
                    break
                time.sleep(min(8, 0.5 * 2**attempt))
            else:
                refused_for_good.append(index)
            time.sleep(gap)

    def probe_tool() -> None:
        while not done.is_set():
            body = json.dumps({"query": "contact preference", "user_id": f"usr_chaos_{random.randrange(20)}"}).encode()
            status, seconds, _ = post(server.url, TOOL_URL, body, {"X-Memory-Secret": TOOL_SECRET}, timeout=30)
            tool_latencies.append(seconds)
            tool_statuses[status] = tool_statuses.get(status, 0) + 1
            time.sleep(0.1)

    def make_trouble() -> None:
        events = sorted(
            [("kill", args.seconds * (n + 1) / (args.kills + 1)) for n in range(args.kills)]
            + [("outage", args.seconds * 0.5)],
            key=lambda event: event[1],
        )
        started = time.monotonic()
        for kind, at in events:
            time.sleep(max(0.0, started + at - time.monotonic()))
            if kind == "kill":
                victim = random.randrange(len(workers))
                workers[victim].kill()
                time.sleep(1)
                workers[victim] = Worker(env, str(data_dir / f"heartbeat-{victim}.json"), interval=0.2).start()
            else:
                proxy.cut()
                proxy.refuse()
                time.sleep(args.outage)
                proxy.restore()

    started = time.monotonic()
    threads = [threading.Thread(target=target) for target in (send_all, probe_tool, make_trouble)]
    for thread in threads:
        thread.start()
    threads[0].join()
    threads[2].join()
    sent_seconds = time.monotonic() - started
    deadline = time.monotonic() + args.settle
    while time.monotonic() < deadline:
        rows = count_rows(database_url, "SELECT status, COUNT(*) FROM memories_webhookevent GROUP BY status")
        statuses = dict(rows)
        if statuses.get("processed", 0) >= len(acknowledged):
            break
        time.sleep(1)
    done.set()
    threads[1].join()
    settle_seconds = time.monotonic() - started - sent_seconds
    rows = count_rows(
        database_url, "SELECT conversation_id, status, attempts FROM memories_webhookevent ORDER BY conversation_id"
    )
    processed = {int(conversation.rsplit("_", 1)[1]) for conversation, status, _ in rows if status == "processed"}
    unfinished = [conversation for conversation, status, _ in rows if status != "processed"]
    duplicates = count_rows(
        database_url,
        "SELECT COUNT(*) FROM (SELECT user_id, text_hash FROM memories_memory WHERE superseded_by_id IS NULL "
        "GROUP BY user_id, text_hash HAVING COUNT(*) > 1) twice",
    )[0][0]
    retried = sum(1 for _, _, attempts in rows if attempts > 1)
    for worker in workers:
        worker.stop()
    server.stop()
    proxy.stop()
    provider.stop()
    shutil.rmtree(data_dir, ignore_errors=True)
    return {
        "events": args.events,
        "acknowledged": len(acknowledged),
        "refused after 5 tries": len(refused_for_good),
        "processed": len(processed & acknowledged),
        "lost": len(acknowledged - processed),
        "duplicated memories": duplicates,
        "stuck after recovery": len(unfinished),
        "events that needed more than one attempt": retried,
        "send window s": round(sent_seconds, 1),
        "settle after the faults s": round(settle_seconds, 1),
        "tool requests": len(tool_latencies),
        "tool p50 ms": round(1000 * percentile(tool_latencies, 0.5), 1),
        "tool p95 ms": round(1000 * percentile(tool_latencies, 0.95), 1),
        "tool max ms": round(1000 * max(tool_latencies, default=0), 1),
        "tool answers": dict(sorted(tool_statuses.items())),
    }


# --- 2. slow provider -----------------------------------------------------------------------------------------


def slow_provider(args, database_url: str, redis_url: str) -> list[dict]:
    import redis

    reset_database(database_url)
    rows = []
    for worker_class, workers, threads in (("sync", 2, 1), ("gthread", 2, 8)):
        redis.Redis.from_url(redis_url).flushdb()
        data_dir = Path(tempfile.mkdtemp(prefix="bench-slow-"))
        provider = FakeOpenAIServer(dimensions=1536).start()
        env = base_env(
            data_dir,
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            OPENAI_BASE_URL=provider.base_url,
            OPENAI_API_KEY="sk-bench",
            EMBEDDING_PROVIDER="openai",
            EMBEDDING_MODEL="text-embedding-3-small",
            EMBEDDING_DIMENSIONS="1536",
            WEB_WORKERS=str(workers),
            WEB_THREADS=str(threads),
        )
        migrate(env)
        server = Gunicorn(env, worker_class=worker_class).start()
        provider.delay = args.provider_delay
        stop = threading.Event()
        tool_results: list[tuple[int, float]] = []

        def slow_queries(stop=stop, server=server, tool_results=tool_results) -> None:
            while not stop.is_set():
                body = json.dumps({"query": f"never asked {random.random()}", "user_id": "usr_slow"}).encode()
                status, seconds, _ = post(server.url, TOOL_URL, body, {"X-Memory-Secret": TOOL_SECRET}, timeout=60)
                tool_results.append((status, seconds))

        slow = [threading.Thread(target=slow_queries) for _ in range(4)]
        for thread in slow:
            thread.start()
        time.sleep(0.5)
        initiation, health = [], []
        measure_until = time.monotonic() + args.measure
        while time.monotonic() < measure_until:
            body = json.dumps({"caller_id": "+16125550100", "agent_id": "agent_bench"}).encode()
            status, seconds, _ = post(server.url, INITIATION_URL, body, {"X-Memory-Secret": INITIATION_SECRET})
            initiation.append(seconds if status == 200 else float("inf"))
            health.append(get(server.url + "/healthz")[1])
        stop.set()
        for thread in slow:
            thread.join()
        server.stop()
        provider.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
        rows.append(
            {
                "serving": f"{worker_class}, {workers} x {threads}",
                "initiation p50 ms": round(1000 * percentile(initiation, 0.5), 1),
                "initiation p95 ms": round(1000 * percentile(initiation, 0.95), 1),
                "healthz p95 ms": round(1000 * percentile(health, 0.95), 1),
                "initiations answered": len(initiation),
                "slow tool queries": len(tool_results),
                "slow tool max s": round(max((seconds for _, seconds in tool_results), default=0), 2),
                "slow tool answers": sorted({status for status, _ in tool_results}),
            }
        )
    return rows


# --- 3. busy embedded stack -----------------------------------------------------------------------------------


def busy_embedded(args) -> list[dict]:
    rows = []
    for name, server_class in (("scripts/run (runserver)", DevelopmentServer), ("gunicorn 2 x 8", Gunicorn)):
        data_dir = Path(tempfile.mkdtemp(prefix="bench-busy-"))
        env = base_env(data_dir, TASKS_IN_PROCESS_WORKER="1", WEB_WORKERS="2", WEB_THREADS="8")
        migrate(env)
        server = server_class(env).start()

        def send(index: int, server=server) -> tuple[int, float]:
            body = call_body(index, "busy")
            status, seconds, _ = post(server.url, POST_CALL_URL, body, signed_headers(body))
            return status, seconds

        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(send, range(args.burst)))
        sent = time.monotonic() - started
        database = data_dir / "db.sqlite3"
        deadline = time.monotonic() + args.settle
        processed = 0
        while time.monotonic() < deadline:
            import sqlite3

            with sqlite3.connect(database) as connection:
                processed = connection.execute(
                    "SELECT COUNT(*) FROM memories_webhookevent WHERE status = 'processed'"
                ).fetchone()[0]
            if processed >= args.burst:
                break
            time.sleep(0.5)
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
        latencies = [seconds for _, seconds in results]
        rows.append(
            {
                "server": name,
                "webhooks": args.burst,
                "non-2xx": sum(1 for status, _ in results if not 200 <= status < 300),
                "p50 ms": round(1000 * statistics.median(latencies), 1),
                "p95 ms": round(1000 * percentile(latencies, 0.95), 1),
                "max ms": round(1000 * max(latencies), 1),
                "sent in s": round(sent, 1),
                "processed": processed,
                "all processed after s": round(time.monotonic() - started, 1),
            }
        )
    return rows


def table(rows: list[dict]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(row[key]) for key in keys) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--section", choices=["all", "chaos", "slow", "busy"], default="all")
    parser.add_argument("--events", type=int, default=200, help="post-call events in the chaos run")
    parser.add_argument("--seconds", type=float, default=40.0, help="how long the chaos run sends")
    parser.add_argument("--kills", type=int, default=3, help="SIGKILLs of a worker during the chaos run")
    parser.add_argument("--outage", type=float, default=6.0, help="seconds the database is refused")
    parser.add_argument("--settle", type=float, default=120.0, help="most seconds to wait for the workers after")
    parser.add_argument("--provider-delay", type=float, default=10.0, help="slow provider: seconds per answer")
    parser.add_argument("--measure", type=float, default=10.0, help="slow provider: seconds measured per server")
    parser.add_argument("--burst", type=int, default=500, help="webhooks sent to the embedded stack")
    parser.add_argument("--tiny", action="store_true", help="a few events and seconds (the test suite)")
    args = parser.parse_args()
    if args.tiny:
        args.events, args.seconds, args.kills, args.outage, args.settle = 12, 6.0, 1, 2.0, 60.0
        args.provider_delay, args.measure, args.burst = 3.0, 2.0, 24
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE + ("_tiny" if args.tiny else ""))
    redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS)
    random.seed(7)
    if args.section in ("all", "chaos"):
        result = chaos(args, database_url, redis_url)
        print(f"\n## Chaos: {args.events} events, {args.kills} worker kills, database refused {args.outage:g} s\n")
        print(table([{"measure": key, "value": value} for key, value in result.items()]), flush=True)
    if args.section in ("all", "slow"):
        print(f"\n## Slow provider ({args.provider_delay:g} s per answer), 4 tool queries missing the cache at once\n")
        print(table(slow_provider(args, database_url, redis_url)), flush=True)
    if args.section in ("all", "busy"):
        print(f"\n## Embedded stack: {args.burst} post-call webhooks from 8 concurrent senders\n")
        print(table(busy_embedded(args)), flush=True)


if __name__ == "__main__":
    main()
