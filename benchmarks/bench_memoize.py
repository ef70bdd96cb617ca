"""@kachery_cached against joblib.Memory, measured side by side in one run.

Every figure is the median of interleaved repetitions (each repetition runs every
contender once, in turn), after one warm-up. Stores live in a temp dir on the same disk.

    python benchmarks/bench_memoize.py              # 100 MB arrays, 7 repetitions
    python benchmarks/bench_memoize.py --mb 500 --reps 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import fmt_seconds, per_call, print_comparison


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=float, default=100.0, help="big array size (default 100)")
    parser.add_argument("--reps", type=int, default=7, help="repetitions (default 7)")
    parser.add_argument("--first-call-reps", type=int, default=5)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="bench-memoize-"))
    os.environ["KACHERY_CLOUD_DIR"] = str(scratch / "kachery")
    os.environ.pop("KACHERY_ZONE", None)
    import joblib

    from kachery_flows import Store, kachery_cached

    memory = joblib.Memory(scratch / "joblib", verbose=0)
    memory_mmap = joblib.Memory(scratch / "joblib-mmap", mmap_mode="r", verbose=0)
    n = int(args.mb * 1e6 // 8)
    big = np.random.default_rng(0).standard_normal(n)
    rows: list[dict[str, Any]] = []

    def row(what: str, ours: float, theirs: float, target: str, anchor: str) -> None:
        rows.append(
            {"what": what, "ours": ours, "anchor": theirs, "anchor_name": anchor, "target": target}
        )

    # 1. hit latency, small arguments; the result as JSON, and pickled (a tuple is not
    #    exact JSON: the path the memo trust rule guards)
    def small(a: int, b: float, c: str) -> list[Any]:
        return [a, b, c]

    def small_tuple(a: int, b: float, c: str) -> tuple[Any, ...]:
        return (a, b, c)

    for what, fn in (("hit, small args", small), ("hit, small args, pickled result", small_tuple)):
        k_fn, j_fn = kachery_cached(fn), memory.cache(fn)
        k_fn(1, 2.0, "abc")
        j_fn(1, 2.0, "abc")
        t = per_call(
            {"k": lambda k=k_fn: k(1, 2.0, "abc"), "j": lambda j=j_fn: j(1, 2.0, "abc")},
            args.reps,
            number=2000,
        )
        row(what, t["k"], t["j"], "≥ 3× faster", "joblib.Memory")

    # 2. key of a big array argument vs joblib.hash
    def consume(x: Any) -> float:
        return float(x[0])

    k_consume = kachery_cached(consume)
    t = per_call({"k": lambda: k_consume.key(big), "j": lambda: joblib.hash(big)}, args.reps)
    row(f"key, {args.mb:g} MB array argument", t["k"], t["j"], "≥ 10× faster", "joblib.hash")

    # 2b. the whole hit with that argument
    j_consume = memory.cache(consume)
    k_consume(big)
    j_consume(big)
    t = per_call({"k": lambda: k_consume(big), "j": lambda: j_consume(big)}, args.reps)
    row(f"hit, {args.mb:g} MB array argument", t["k"], t["j"], "-", "joblib.Memory")

    # 3. key of a Ref argument (any size): compared with the array it names
    store = Store()
    ref = store.put_npy(big)
    t = per_call(
        {"k": lambda: k_consume.key(ref), "j": lambda: k_consume.key(big)}, args.reps, number=2000
    )
    key_ref = t["k"]
    rows.append(
        {"what": f"key, Ref to a {args.mb:g} MB array", "ours": key_ref, "target": "< 50 µs"}
    )

    # 4. hit returning a big array
    def produce(seed: int) -> Any:
        return np.full(n, float(seed))

    k_produce = kachery_cached(produce)
    j_produce, jm_produce = memory.cache(produce), memory_mmap.cache(produce)
    for fn in (k_produce, j_produce, jm_produce):
        fn(0)
    t = per_call(
        {"k": lambda: k_produce(0), "jm": lambda: jm_produce(0), "j": lambda: j_produce(0)},
        args.reps,
        number=20,
    )
    row(f"hit returning {args.mb:g} MB array", t["k"], t["jm"], "no slower", "joblib mmap_mode='r'")
    row(f"hit returning {args.mb:g} MB array", t["k"], t["j"], "≥ 10× faster", "joblib, no mmap")

    # 5. first call (compute + store) of a big result, over the bare function
    fsync_off = Store(scratch / "kachery-nofsync", fsync=False)
    k_first, k_first_nofsync = kachery_cached(produce), kachery_cached(store=fsync_off)(produce)
    seeds = iter(range(1, 10_000))
    samples: dict[str, list[float]] = {"bare": [], "k": [], "k0": [], "j": []}
    contenders = {"bare": produce, "k": k_first, "k0": k_first_nofsync, "j": j_produce}
    for _ in range(args.first_call_reps):
        for name, fn in contenders.items():
            seed = next(seeds)
            os.sync()  # nobody pays for the previous contender's dirty pages
            start = time.perf_counter()
            fn(seed)
            samples[name].append(time.perf_counter() - start)
    med = {name: statistics.median(s) for name, s in samples.items()}
    for label, name in (("fsync on (default)", "k"), ("fsync off", "k0")):
        rows.append(
            {
                "what": f"first call, {args.mb:g} MB result, {label}: time over the bare function",
                "ours": max(med[name] - med["bare"], 1e-9),
                "anchor": max(med["j"] - med["bare"], 1e-9),
                "anchor_name": "joblib.Memory",
                "target": f"bare function {fmt_seconds(med['bare'])}",
            }
        )
    print_comparison(f"@kachery_cached vs joblib.Memory ({args.mb:g} MB arrays)", rows)
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
