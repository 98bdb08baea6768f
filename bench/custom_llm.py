"""The Custom LLM endpoint: the time to first token it adds, and how many open streams it holds.

    .venv/bin/python bench/custom_llm.py                # embedded stack (SQLite), 1 and 32 streams, then 200 open
    DATABASE_URL=postgres://… REDIS_URL=redis://…/12 .venv/bin/python bench/custom_llm.py --stack production
    .venv/bin/python bench/custom_llm.py --tiny         # seconds; what the test suite runs

A fake upstream LLM (testkit.fake_openai) streams 8 chunks at a fixed pace (50 ms apart). The same client asks,
side by side in one run, (a) the upstream directly and (b) our `/v1/chat/completions` on the ASGI server as
production runs it (gunicorn + 1 uvicorn worker), with a caller who has 50 memories, so every turn looks up and
adds memories before forwarding. Time to first token = request sent → first `data:` event with content. Rows at
1 and 32 concurrent streams; then 200 streams held open at once (each 8 x 250 ms), counting errors. Targets
(issue 15): added p95 ≤ 25 ms at 1 client and ≤ 50 ms at 32; 200 open streams without errors.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.environment import server_environment  # noqa: E402
from testkit.fake_openai import FakeOpenAIServer  # noqa: E402
from testkit.processes import AsgiServer  # noqa: E402

KEY = "bench-llm-key"


def environment(stack: str, data_dir: str, upstream: str) -> dict[str, str]:
    env = server_environment(
        data_dir, ELEVENLABS_LLM_SECRETS=KEY, CUSTOM_LLM_BASE_URL=upstream, CUSTOM_LLM_API_KEY="sk-upstream"
    )
    if stack == "production":
        base = os.environ.get("DATABASE_URL", "postgres://memoryplatform:memoryplatform@127.0.0.1:5432/memoryplatform")
        env["DATABASE_URL"] = base.rsplit("/", 1)[0] + "/memoryplatform_bench_llm"
        env["REDIS_URL"] = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12")
    return env


def prepare(env: dict, stack: str) -> None:
    import subprocess

    if stack == "production":
        import psycopg

        url = env["DATABASE_URL"]
        with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as connection:
            connection.execute('DROP DATABASE IF EXISTS "memoryplatform_bench_llm" WITH (FORCE)')
            connection.execute('CREATE DATABASE "memoryplatform_bench_llm"')
    script = """
import django; django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from memories.services import NewMemory, create_memories
from memories.owners import default_owner
topics = ["dog", "invoice", "flight", "garden", "piano"]
facts = [NewMemory(f"Fact {index} about the caller's {topics[index % 5]}") for index in range(50)]
create_memories(default_owner("caller"), facts)
"""
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True)


def first_token_ms(url: str, key: str, question: str, hold: bool = False) -> float:
    """Send one streaming request; milliseconds until the first content chunk; `hold` reads it to the end."""
    body = {
        "model": "gpt-4o-mini",
        "stream": True,
        "user_id": "caller",
        "messages": [{"role": "system", "content": "You are Ava."}, {"role": "user", "content": question}],
    }
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        first = None
        for line in response:
            if (
                first is None
                and line.startswith(b"data: {")
                and b'"content":"' in line.replace(b" ", b"")
                and (b'"content":""' not in line.replace(b" ", b""))
            ):
                first = 1000 * (time.perf_counter() - started)
                if not hold:
                    break
            if line.startswith(b"data: [DONE]"):
                break
    if first is None:
        raise RuntimeError("no content chunk")
    return first


def measure(url: str, key: str, clients: int, requests: int) -> list[float]:
    questions = [f"what did I say about my {topic}?" for topic in ("dog", "invoice", "flight", "garden", "piano")]
    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(lambda i: first_token_ms(url, key, questions[i % 5]), range(requests)))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", choices=["embedded", "production"], default="embedded")
    parser.add_argument("--requests", type=int, default=200, help="requests per row")
    parser.add_argument("--open-streams", type=int, default=200)
    parser.add_argument("--tiny", action="store_true", help="20 requests per row, 20 open streams")
    args = parser.parse_args()
    if args.tiny:
        args.requests, args.open_streams = 20, 20
    upstream = FakeOpenAIServer(dimensions=384).start()
    upstream.stream_words = [f" token{index}" for index in range(8)]
    upstream.stream_interval = 0.05
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-llm-") as data_dir:
            env = environment(args.stack, data_dir, upstream.base_url)
            prepare(env, args.stack)
            with AsgiServer(env) as server:
                ours = f"{server.url}/v1/chat/completions"
                direct = f"{upstream.base_url}/chat/completions"
                measure(ours, KEY, 4, 20)  # warm-up: connections, the plan cache, the memories' pages
                for clients in (1, 32):
                    count = args.requests if clients == 1 else max(args.requests, clients * 4)
                    baseline = measure(direct, "sk-upstream", clients, count)
                    through = measure(ours, KEY, clients, count)
                    rows.append((clients, baseline, through))
                upstream.stream_interval = 0.25  # long-lived streams: each is open about 2 s
                errors, lock = [], threading.Lock()

                def hold(index: int) -> None:
                    try:
                        first_token_ms(ours, KEY, "what about my dog?", hold=True)
                    except Exception as error:  # counted, reported
                        with lock:
                            errors.append(repr(error))

                started = time.perf_counter()
                threads = [threading.Thread(target=hold, args=(index,)) for index in range(args.open_streams)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                held_seconds = time.perf_counter() - started
    finally:
        upstream.stop()
    print(
        f"\n{args.stack}; gunicorn + 1 uvicorn worker; upstream streams 8 chunks 50 ms apart; caller with 50 memories\n"
    )
    print("| streams at once | direct p50 / p95 ms | through us p50 / p95 ms | added p50 / p95 ms |")
    print("|---|---|---|---|")
    for clients, baseline, through in rows:
        print(
            f"| {clients} | {statistics.median(baseline):.1f} / {percentile(baseline, 0.95):.1f} "
            f"| {statistics.median(through):.1f} / {percentile(through, 0.95):.1f} "
            f"| {statistics.median(through) - statistics.median(baseline):.1f} / "
            f"{percentile(through, 0.95) - percentile(baseline, 0.95):.1f} |"
        )
    print(
        f"\n{args.open_streams} streams open at once (2 s each): {len(errors)} errors, all done in {held_seconds:.1f} s"
    )
    for error in errors[:5]:
        print("  ", error)


if __name__ == "__main__":
    main()
