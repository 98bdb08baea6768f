"""The embedding cache hit path on Redis: what `generate_embedding` costs on a hit, against a bare GET.

    .venv/bin/python bench/cache_hit_path.py                # 200 texts x 25 rounds, 1,536 dimensions
    .venv/bin/python bench/cache_hit_path.py --profile      # and a cProfile of the hit path, whatever the ratio
    .venv/bin/python bench/cache_hit_path.py --tiny         # seconds; what the test suite runs

Needs Redis: BENCH_REDIS_URL (default redis://127.0.0.1:6379/13). Django is set up with that URL as
REDIS_URL, so the embedding cache is the production backend (EmbeddingRedisCache, RawBytesSerializer, the
production socket timeouts), with the hashing provider at 1,536 dimensions. Every key lives under a prefix of
this run's own (`bench-hit-<pid>`) and exactly those keys are deleted at the end: nothing else in the
database is read or removed (no FLUSHDB).

`--texts` texts are embedded once with `generate_embeddings_batch` (warm), then measured side by side, in
interleaved rounds (the order of the variants rotates on every text, the texts are shuffled every round),
one call at a time:
  hit        - `generate_embedding(text)` on a hit: the whole public path (validation, key hashing, the
               counted lookup through django-redis: MGET, hits counted in process, length check, numpy decode)
  bare GET   - `redis.Redis.get(raw_key)` of the same stored value with a plain redis-py client (same
               socket timeouts, same RESP parser): the floor any Redis cache pays
  counted lookup - `caches["embeddings"].get_many_counted([key])` alone: the counted lookup without the Python
               around it
  prototypes - the hit path with the lookup replaced by a MGET + HINCRBY pipeline, or by a plain MGET with
               the hit counted in process: not project code, measured to size the suggestions
then the steps of the hit path one by one (where the time goes), the cost of counting (the same lookup
with count=True and count=False, a plain MGET, and a MGET + HINCRBY pipeline, for 1 and 20 keys: all one
round trip each), and the bytes
per entry of our float32 codec against JSON and a pickled list, with Redis' `MEMORY USAGE` of each.
Target: hit / bare GET <= 1.5 (the median of the per-round ratios). Above it (or with --profile) the hit
path is profiled with cProfile.
"""

import argparse
import cProfile
import json
import os
import pickle
import pstats
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_REDIS = "redis://127.0.0.1:6379/13"
TARGET_RATIO = 1.5
PENDING_LOCK = threading.Lock()


def setup_django(redis_url: str, data_dir: str, dimensions: int, prefix: str) -> None:
    """Django on the production cache backend (Redis at `redis_url`), hashing provider, keys under `prefix`."""
    for name in ("DATABASE_URL", "EMBEDDING_CACHE_REDIS_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL", "EMBEDDING_MODEL"):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "memoryplatform.settings",
            "READ_DOTENV": "0",
            "SECRET_KEY": "bench-only-secret-key-long-and-varied-enough-for-debug-0-0123456789",
            "DATA_DIR": data_dir,
            "TASKS_IN_PROCESS_WORKER": "0",
            "LOG_LEVEL": "WARNING",
            "REDIS_URL": redis_url,
            "EMBEDDING_PROVIDER": "hashing",
            "EMBEDDING_DIMENSIONS": str(dimensions),
        }
    )
    import django

    django.setup()
    from django.conf import settings

    # Before the cache is first used: this run's keys (and its stats hash) never collide with anyone's.
    settings.CACHES["embeddings"]["KEY_PREFIX"] = prefix


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def interleaved(
    variants: dict[str, Callable[[int], object]], count: int, rounds: int, seed: int = 1
) -> tuple[dict[str, list[float]], list[dict[str, float]]]:
    """Time each variant once per index per round, one call at a time, rotating the order of the variants.

    Returns every sample in microseconds per variant, and the per-round medians.
    """
    names = list(variants)
    samples: dict[str, list[float]] = {name: [] for name in names}
    per_round: list[dict[str, float]] = []
    rng = random.Random(seed)
    clock = time.perf_counter_ns
    for _ in range(rounds):
        order = list(range(count))
        rng.shuffle(order)
        this_round: dict[str, list[float]] = {name: [] for name in names}
        for position, index in enumerate(order):
            shift = position % len(names)
            for name in names[shift:] + names[:shift]:
                call = variants[name]
                started = clock()
                call(index)
                this_round[name].append((clock() - started) / 1000)
        for name in names:
            samples[name].extend(this_round[name])
        per_round.append({name: statistics.median(values) for name, values in this_round.items()})
    return samples, per_round


def profile_hit_path(texts: list[str], rounds: int, top: int = 18) -> list[tuple[str, int, float, float]]:
    """cProfile of `generate_embedding` on hits: (function, calls per hit, own µs per hit, cumulative µs per hit)."""
    from embeddings.generation import generate_embedding

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(rounds):
        for text in texts:
            generate_embedding(text)
    profiler.disable()
    hits = rounds * len(texts)
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = []
    for (filename, line, function), (_, calls, own, cumulative, _) in stats.items():
        where = filename.replace(str(ROOT) + "/", "")
        if "site-packages/" in where:
            where = where.split("site-packages/", 1)[1]
        rows.append((f"{where}:{line}({function})", calls / hits, 1e6 * own / hits, 1e6 * cumulative / hits))
    rows.sort(key=lambda row: row[2], reverse=True)
    return rows[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=200, help="distinct cached texts (default 200)")
    parser.add_argument("--rounds", type=int, default=25, help="interleaved rounds over all texts (default 25)")
    parser.add_argument("--dimensions", type=int, default=1536)
    parser.add_argument("--profile", action="store_true", help="profile the hit path even when under the target")
    parser.add_argument("--tiny", action="store_true", help="20 texts x 3 rounds")
    args = parser.parse_args()
    if args.tiny:
        args.texts, args.rounds = 20, 3

    redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS)
    prefix = f"bench-hit-{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="bench-cache-hit-") as data_dir:
        setup_django(redis_url, data_dir, args.dimensions, prefix)
        from django.core.cache import caches

        backend = caches["embeddings"]
        try:
            run(args, redis_url, prefix)
        finally:
            from embeddings.cache_backends.redis import discard_pending_counts

            discard_pending_counts()  # or the exit flush would write the stats hash back
            removed = backend.clear_embeddings()
            backend.redis().delete(backend.stats_key)
            print(f"\ncleaned up: {removed} embedding keys and the stats hash under `{prefix}:`")


def run(args: argparse.Namespace, redis_url: str, prefix: str) -> None:
    import numpy as np
    import redis
    from django.conf import settings
    from django.core.cache import caches

    from embeddings.cache import get_embedding_cache
    from embeddings.codec import decode_vector, encode_vector, is_valid_vector_bytes
    from embeddings.generation import cache_key_for, generate_embedding, generate_embeddings_batch, validate_text
    from embeddings.providers import get_provider
    from testkit.fake_openai import fake_vector

    backend = caches["embeddings"]
    provider = get_provider()
    texts = [f"the caller's preferred contact time is weekday mornings, note {index}" for index in range(args.texts)]
    started = time.perf_counter()
    generate_embeddings_batch(texts)
    warm_seconds = time.perf_counter() - started
    keys = [cache_key_for(text) for text in texts]
    raw_keys = [str(backend.client.make_key(key)) for key in keys]
    found = backend.get_many_counted(keys, count=False)
    assert len(found) == len(keys), f"warming failed: {len(found)} of {len(keys)} cached"

    plain = redis.Redis.from_url(
        redis_url,
        socket_timeout=settings.CACHE_SOCKET_TIMEOUT,
        socket_connect_timeout=settings.CACHE_SOCKET_CONNECT_TIMEOUT,
    )
    assert plain.get(raw_keys[0]) == found[keys[0]], "the bare GET must read the very value the cache stored"
    counted = backend.get_many_counted
    for index in range(len(texts)):  # warm both connections and the script cache
        generate_embedding(texts[index])
        plain.get(raw_keys[index])

    # --- 1. the hit path against a bare GET ---------------------------------------------------------------
    prototype_stats = f"{prefix}:bench-prototype-stats"
    pending: Counter[str] = Counter()
    before = command_stats(plain)
    samples, per_round = interleaved(
        {
            "hit": lambda i: generate_embedding(texts[i]),
            "bare GET": lambda i: plain.get(raw_keys[i]),
            "counted lookup": lambda i: counted([keys[i]]),
            "prototype: hit with a pipeline": lambda i: pipeline_hit(texts[i], prototype_stats),
            "prototype: hit counted in process": lambda i: deferred_hit(texts[i], pending),
        },
        len(texts),
        args.rounds,
    )
    server = command_delta(before, command_stats(plain))
    plain.delete(prototype_stats)
    round_ratios = [row["hit"] / row["bare GET"] for row in per_round]
    ratio = statistics.median(round_ratios)
    floor = statistics.median(samples["bare GET"])

    print(
        f"Redis {plain.info('server')['redis_version']} at {redis_url}, redis-py {redis.__version__} "
        f"(parser: {'hiredis' if _has_hiredis() else 'pure Python'}), {args.dimensions} dimensions "
        f"({args.dimensions * 4:,} B values), {len(texts)} cached texts x {args.rounds} interleaved rounds "
        f"= {len(texts) * args.rounds:,} calls per variant (warmed in {warm_seconds:.2f} s)"
    )
    print()
    print("| variant | median µs | p95 µs | / bare GET |")
    print("|---|---|---|---|")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.1f} | {percentile(values, 0.95):.1f} | {median / floor:.2f} |")
    prototypes = {
        name: statistics.median(row[name] / row["bare GET"] for row in per_round)
        for name in ("prototype: hit with a pipeline", "prototype: hit counted in process")
    }
    verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
    print()
    print(
        f"hit / bare GET: {ratio:.2f} (median of {len(round_ratios)} per-round ratios; "
        f"min {min(round_ratios):.2f}, max {max(round_ratios):.2f}) - {verdict} the target <= {TARGET_RATIO}"
    )
    print(
        "prototypes (not project code, measured to size the suggestions; the same path with the lookup "
        f"replaced by): a non-transactional MGET + HINCRBY pipeline {prototypes['prototype: hit with a pipeline']:.2f}"
        f"; a plain MGET, hits counted in process (flushed later) {prototypes['prototype: hit counted in process']:.2f}"
    )

    calls = len(texts) * args.rounds
    print()
    print(
        "Inside Redis during those calls (INFO commandstats, server-wide: calls beyond the "
        f"{calls:,} GETs made here are other clients'; MGET and HINCRBY include the counted lookups' and the "
        "prototypes'):"
    )
    print()
    print("| command | calls | server µs per call |")
    print("|---|---|---|")
    for command in ("get", "mget", "hincrby"):
        count, usec = server.get(command, (0, 0))
        print(f"| {command.upper()} | {count:,} | {usec / count if count else 0:.2f} |")

    # --- 2. where the time goes: the steps of the hit path ----------------------------------------------------
    cache = get_embedding_cache()
    values = [found[key] for key in keys]
    steps: dict[str, Callable[[int], object]] = {
        "validate_text": lambda i: validate_text(texts[i]),
        "get_provider()": lambda i: get_provider(),
        "cache key (sha256)": lambda i: cache_key_for(texts[i], provider),
        "get_embedding_cache()": lambda i: get_embedding_cache(),
        "EmbeddingCache.lookup (fail_open + MGET)": lambda i: cache.lookup({keys[i]: texts[i]}),
        "  of which caches[alias]": lambda i: cache.backend,
        "  of which make_key": lambda i: str(backend.client.make_key(keys[i])),
        "  of which get_client": lambda i: backend.redis(),
        "is_valid_vector_bytes": lambda i: is_valid_vector_bytes(values[i], provider.dimensions),
        "decode_vector (numpy)": lambda i: decode_vector(values[i], provider.dimensions),
        "hit (whole path)": lambda i: generate_embedding(texts[i]),
        "bare GET": lambda i: plain.get(raw_keys[i]),
    }
    step_samples, _ = interleaved(steps, len(texts), max(1, args.rounds // 3), seed=2)
    print()
    print("Where the time goes (each step timed alone, interleaved; medians):")
    print()
    print("| step | median µs | share of the hit |")
    print("|---|---|---|")
    whole = statistics.median(step_samples["hit (whole path)"])
    for name, step_values in step_samples.items():
        median = statistics.median(step_values)
        print(f"| {name} | {median:.2f} | {100 * median / whole:.0f} % |")

    # --- 3. the cost of counting ----------------------------------------------------------------------------
    print()
    print("The cost of counting (one round trip each; medians, interleaved):")
    print()
    print(
        "| keys per lookup | count=True µs | count=False µs | plain MGET µs | pipeline MGET+HINCRBY µs "
        "| counting costs | count=True / MGET |"
    )
    print("|---|---|---|---|---|---|---|")
    pipeline_stats = f"{prefix}:bench-pipeline-stats"
    for width in (1, 20):
        windows = [[keys[(start + offset) % len(keys)] for offset in range(width)] for start in range(len(keys))]
        raw_windows = [[str(backend.client.make_key(key)) for key in window] for window in windows]
        cost, _ = interleaved(
            {
                "counted": lambda i, w=windows: counted(w[i], count=True),
                "uncounted": lambda i, w=windows: counted(w[i], count=False),
                "mget": lambda i, w=raw_windows: plain.mget(w[i]),
                "pipeline": lambda i, w=raw_windows: counted_pipeline(plain, w[i], pipeline_stats),
            },
            len(keys),
            max(1, args.rounds // 2),
            seed=3 + width,
        )
        with_count, without, mget, piped = (
            statistics.median(cost[name]) for name in ("counted", "uncounted", "mget", "pipeline")
        )
        print(
            f"| {width} | {with_count:.1f} | {without:.1f} | {mget:.1f} | {piped:.1f} | {with_count - without:+.1f} µs "
            f"({100 * (with_count / without - 1):+.0f} %) | {with_count / mget:.2f}x |"
        )
    plain.delete(pipeline_stats)

    # --- 4. bytes per entry ---------------------------------------------------------------------------------
    client = backend.redis()
    dense = fake_vector("a dense, OpenAI-like unit vector", args.dimensions)
    local = decode_vector(values[0], args.dimensions)
    stored_usage = [client.memory_usage(raw_key, samples=0) for raw_key in raw_keys[:20]]
    formats = [
        ("float32 codec (what we store)", encode_vector(dense), statistics.median(stored_usage)),
        ("JSON list, dense vector", json.dumps(dense.tolist()).encode(), None),
        (
            f"JSON list, local provider vector ({np.count_nonzero(local)} non-zero)",
            json.dumps(local.tolist()).encode(),
            None,
        ),
        ("pickled list of floats", pickle.dumps(dense.tolist(), protocol=pickle.HIGHEST_PROTOCOL), None),
    ]
    print()
    print(
        f"Bytes per entry ({args.dimensions} dimensions; MEMORY USAGE includes the key "
        f"({len(raw_keys[0])} B here) and Redis' per-key overhead):"
    )
    print()
    print("| format | value bytes | Redis MEMORY USAGE per entry |")
    print("|---|---|---|")
    for index, (label, value, usage) in enumerate(formats):
        if usage is None:
            probe = f"{prefix}:bench-format:{index}:" + raw_keys[0].rsplit(":", 1)[1]
            try:
                client.set(probe, value)
                usage = client.memory_usage(probe, samples=0)
            finally:
                client.delete(probe)
        print(f"| {label} | {len(value):,} | {int(usage):,} |")

    # --- 5. a profile when over the target ------------------------------------------------------------------
    if ratio > TARGET_RATIO or args.profile:
        print()
        print(
            f"cProfile of {len(texts) * max(1, args.rounds // 5):,} hits (own and cumulative µs per hit, "
            "inflated by the profiler; the top functions by own time):"
        )
        print()
        print("| function | calls per hit | own µs | cumulative µs |")
        print("|---|---|---|---|")
        for function, calls, own, cumulative in profile_hit_path(texts, max(1, args.rounds // 5)):
            print(f"| `{function}` | {calls:g} | {own:.2f} | {cumulative:.2f} |")


def pipeline_hit(text: str, stats_key: str):
    """Prototype, not project code: `generate_embedding` on a hit with the lookup replaced by a pipeline."""
    from embeddings.cache import get_embedding_cache
    from embeddings.codec import decode_vector, is_valid_vector_bytes
    from embeddings.generation import cache_key_for, validate_text
    from embeddings.providers import get_provider

    text = validate_text(text)
    provider = get_provider()
    key = cache_key_for(text, provider)
    backend = get_embedding_cache().backend
    pipeline = backend.redis().pipeline(transaction=False)
    pipeline.mget([str(backend.client.make_key(key))])
    pipeline.hincrby(stats_key, "hits", 1)
    value = pipeline.execute()[0][0]
    assert is_valid_vector_bytes(value, provider.dimensions)
    return decode_vector(value, provider.dimensions)


def deferred_hit(text: str, pending: "Counter[str]"):
    """Prototype, not project code: `generate_embedding` on a hit with a plain MGET, the hit counted in
    process (to be added to the shared counters later, e.g. in the pipeline of the next write)."""
    from embeddings.cache import get_embedding_cache
    from embeddings.codec import decode_vector, is_valid_vector_bytes
    from embeddings.generation import cache_key_for, validate_text
    from embeddings.providers import get_provider

    text = validate_text(text)
    provider = get_provider()
    key = cache_key_for(text, provider)
    backend = get_embedding_cache().backend
    value = backend.redis().mget([str(backend.client.make_key(key))])[0]
    with PENDING_LOCK:
        pending["hits" if value is not None else "misses"] += 1
    assert is_valid_vector_bytes(value, provider.dimensions)
    return decode_vector(value, provider.dimensions)


def counted_pipeline(client, raw_keys: list[str], stats_key: str) -> list:
    """A counted lookup as one pipeline (an alternative, measured for comparison): MGET and HINCRBY in one
    non-transactional pipeline, one round trip."""
    pipeline = client.pipeline(transaction=False)
    pipeline.mget(raw_keys)
    pipeline.hincrby(stats_key, "lookups", len(raw_keys))
    return pipeline.execute()[0]


def command_stats(client) -> dict[str, tuple[int, int]]:
    """(calls, total µs) per command from INFO commandstats (server-wide figures)."""
    return {
        name.removeprefix("cmdstat_"): (int(row["calls"]), int(row["usec"]))
        for name, row in client.info("commandstats").items()
    }


def command_delta(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
    return {
        name: (calls - before.get(name, (0, 0))[0], usec - before.get(name, (0, 0))[1])
        for name, (calls, usec) in after.items()
    }


def _has_hiredis() -> bool:
    try:
        import hiredis  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
