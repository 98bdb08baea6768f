"""Hit rate of our embedding cache on a Zipf(1.0) trace, beside exact LRU, FIFO and the offline optimum.

    .venv/bin/python bench/hit_rate.py                 # 100k lookups over 20k texts, cache sizes 1k, 5k, 20k
    .venv/bin/python bench/hit_rate.py --tiny          # seconds; what the test suite runs

The trace: `--lookups` draws (numpy, seeded) from a finite Zipf law with s = 1.0 over ranks 1..`--texts`
(p(k) proportional to 1/k); rank k is the text "query text k". The same trace is then
  ours - replayed through the real thing: `embeddings.generation.generate_embedding(text)` for every
         lookup, on the embedded stack's SQLiteLRUCache limited to `size` entries (EMBEDDING_CACHE_MAX_ENTRIES),
         a fresh cache file per size, in a child process per size (DATABASE_URL and REDIS_URL are removed
         from its environment); hits and misses are read from `embeddings.statistics.collect_statistics()`.
         The hashing provider at EMBEDDING_DIMENSIONS=64 (`--dimensions`): the hit rate does not depend on the
         vector length, and small vectors keep 300k lookups quick.
  LRU  - an exact LRU of `size` entries simulated in pure Python (OrderedDict)
  FIFO - first in, first out (a hit does not refresh), simulated
  OPT  - Belady's offline optimum for demand caching: every miss is inserted and, when full, the entry whose
         next use is farthest in the future is evicted (next uses precomputed from the whole trace)
Every policy starts cold, so the compulsory misses (first sight of each distinct text) count for all.
Target: ours within 10 % of the exact LRU; the LRU/OPT column says how far LRU is from the optimum.
Redis (allkeys-lru) is not replayed: it evicts by memory, not by entry count.
"""

import argparse
import heapq
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def zipf_trace(lookups: int, texts: int, s: float = 1.0, seed: int = 2024) -> list[int]:
    """`lookups` ranks in 1..`texts`, drawn with p(k) proportional to 1/k**s."""
    import numpy as np

    weights = 1.0 / np.arange(1, texts + 1, dtype=np.float64) ** s
    rng = np.random.default_rng(seed)
    return (rng.choice(texts, size=lookups, p=weights / weights.sum()) + 1).tolist()


def text_for(rank: int) -> str:
    return f"query text {rank}"


def lru_hits(trace: list[int], size: int) -> int:
    cache: OrderedDict[int, None] = OrderedDict()
    hits = 0
    for item in trace:
        if item in cache:
            hits += 1
            cache.move_to_end(item)
        else:
            cache[item] = None
            if len(cache) > size:
                cache.popitem(last=False)
    return hits


def fifo_hits(trace: list[int], size: int) -> int:
    cached: set[int] = set()
    order: deque[int] = deque()
    hits = 0
    for item in trace:
        if item in cached:
            hits += 1
        else:
            cached.add(item)
            order.append(item)
            if len(order) > size:
                cached.discard(order.popleft())
    return hits


def opt_hits(trace: list[int], size: int) -> int:
    """Belady's MIN with forced insertion: on a miss into a full cache, evict the farthest next use."""
    never = len(trace)
    next_use = [never] * len(trace)
    last_seen: dict[int, int] = {}
    for position in range(len(trace) - 1, -1, -1):
        next_use[position] = last_seen.get(trace[position], never)
        last_seen[trace[position]] = position
    cached: dict[int, int] = {}  # item -> its next use
    heap: list[tuple[int, int]] = []  # (-next use, item); stale entries are skipped when popped
    hits = 0
    for position, item in enumerate(trace):
        upcoming = next_use[position]
        if item in cached:
            hits += 1
        elif len(cached) >= size:
            while True:
                negative_next, victim = heapq.heappop(heap)
                if cached.get(victim) == -negative_next:
                    del cached[victim]
                    break
        cached[item] = upcoming
        heapq.heappush(heap, (-upcoming, item))
    return hits


def child_env(data_dir: Path, size: int, dimensions: int) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "EMBEDDING_CACHE_REDIS_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL")
        and not key.startswith("EMBEDDING_")
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "memoryplatform.settings",
            "READ_DOTENV": "0",
            "SECRET_KEY": "bench-only-secret-key-long-and-varied-enough-for-debug-0-0123456789",
            "TASKS_IN_PROCESS_WORKER": "0",
            "LOG_LEVEL": "WARNING",
            "DATA_DIR": str(data_dir),
            "EMBEDDING_CACHE_PATH": str(data_dir / f"embedding-cache-{size}.sqlite3"),
            "EMBEDDING_CACHE_MAX_ENTRIES": str(size),
            "EMBEDDING_CACHE_TTL": "0",
            "EMBEDDING_PROVIDER": "hashing",
            "EMBEDDING_DIMENSIONS": str(dimensions),
        }
    )
    return env


def replay_in_child(trace_path: Path, data_dir: Path, size: int, dimensions: int) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--replay", str(trace_path)],
        cwd=ROOT,
        env=child_env(data_dir, size, dimensions),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"replay of size {size} failed:\n{result.stdout}{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def replay(trace_path: str) -> None:
    """Child: run the trace through generate_embedding on the configured cache, print the statistics as JSON."""
    import django

    django.setup()
    from embeddings.generation import generate_embedding
    from embeddings.statistics import collect_statistics

    trace = json.loads(Path(trace_path).read_text())
    started = time.perf_counter()
    for rank in trace:
        generate_embedding(text_for(rank))
    seconds = time.perf_counter() - started
    stats = collect_statistics()
    assert stats.available, stats.error
    print(
        json.dumps(
            {
                "hits": stats.hits,
                "misses": stats.misses,
                "provider_texts": stats.provider_texts,
                "entries": stats.entries,
                "max_entries": stats.max_entries,
                "evictions": stats.evictions,
                "backend": stats.backend,
                "seconds": seconds,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lookups", type=int, default=100_000)
    parser.add_argument("--texts", type=int, default=20_000, help="distinct texts (Zipf ranks)")
    parser.add_argument("--sizes", default="1000,5000,20000", help="cache sizes in entries, comma-separated")
    parser.add_argument("--dimensions", type=int, default=64, help="embedding dimensions of the replay (default 64)")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--jobs", type=int, default=2, help="replays run in parallel (default 2)")
    parser.add_argument("--tiny", action="store_true", help="3,000 lookups over 800 texts, sizes 40,200,800")
    parser.add_argument("--replay", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replay:
        replay(args.replay)
        return
    if args.tiny:
        args.lookups, args.texts, args.sizes = 3000, 800, "40,200,800"
    sizes = [int(size) for size in args.sizes.split(",") if size]

    started = time.perf_counter()
    trace = zipf_trace(args.lookups, args.texts, seed=args.seed)
    distinct = len(set(trace))
    with tempfile.TemporaryDirectory(prefix="bench-hit-rate-") as folder:
        data_dir = Path(folder)
        trace_path = data_dir / "trace.json"
        trace_path.write_text(json.dumps(trace))
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            ours = {size: pool.submit(replay_in_child, trace_path, data_dir, size, args.dimensions) for size in sizes}
            simulated = {size: (lru_hits(trace, size), fifo_hits(trace, size), opt_hits(trace, size)) for size in sizes}
            replayed = {size: future.result() for size, future in ours.items()}

    print(
        f"Zipf(s=1.0) trace: {args.lookups:,} lookups over {args.texts:,} texts (seed {args.seed}), "
        f"{distinct:,} distinct texts drawn; best possible hit rate (every repeat a hit) "
        f"{1 - distinct / args.lookups:.4f}. Ours: SQLiteLRUCache via generate_embedding, hashing provider, "
        f"{args.dimensions} dimensions."
    )
    print()
    print(
        "| size | ours | LRU (simulated) | FIFO | OPT | ours/LRU | LRU/OPT | hits: ours - LRU | ours: evictions "
        "| replay s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size in sizes:
        result = replayed[size]
        lookups = result["hits"] + result["misses"]
        assert lookups == args.lookups, f"size {size}: {lookups} lookups counted, {args.lookups} made"
        lru, fifo, opt = (hits / args.lookups for hits in simulated[size])
        our_rate = result["hits"] / lookups
        print(
            f"| {size:,} | {our_rate:.4f} | {lru:.4f} | {fifo:.4f} | {opt:.4f} | {our_rate / lru:.3f} "
            f"| {lru / opt:.3f} | {result['hits'] - simulated[size][0]:+,} | {result['evictions']:,} "
            f"| {result['seconds']:.1f} |"
        )
    print()
    print(
        "ours/LRU: the target is >= 0.90. LRU/OPT: the share of the offline optimum's hit rate an exact LRU "
        f"reaches. Total {time.perf_counter() - started:.1f} s."
    )


if __name__ == "__main__":
    main()
