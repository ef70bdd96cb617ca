"""Sweeps of small memoized calls: @kachery_cached against joblib.Memory, side by side.

A sweep calls a cheap function with ``--calls`` distinct small arguments (the first
calls: misses), then repeats them (hits). The contenders run in interleaved blocks of
``--block`` calls (joblib, kachery-flows with fsync off, kachery-flows with fsync on, in
turn), so machine noise falls on all of them alike; each figure is the median over
blocks of the mean time per call. All stores live in one temp dir on the same disk, and
the unit "one small durable write" (create a 300-byte file, write, fsync, close, on that
disk) is measured in the same run, interleaved too.

    python benchmarks/bench_small_calls.py                 # 1000 calls, blocks of 50
    python benchmarks/bench_small_calls.py --calls 4000
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import fmt_seconds, note, print_comparison


def small(i: int, scale: float = 1.0) -> dict[str, Any]:
    """The swept function: a tiny dict from two small arguments."""
    return {"i": i, "value": i * scale, "label": f"point-{i}"}


def _durable_write(directory: Path) -> Callable[[int], None]:
    def write(i: int) -> None:
        path = directory / f"unit-{i}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, b"x" * 300)
            os.fsync(fd)
        finally:
            os.close(fd)

    return write


def _sweep(
    contenders: dict[str, Callable[[int], object]], calls: int, block: int, offset: int
) -> dict[str, list[float]]:
    """Per-call seconds of each block, blocks interleaved across contenders."""
    per_block: dict[str, list[float]] = {name: [] for name in contenders}
    for start in range(0, calls, block):
        for name, fn in contenders.items():
            t0 = time.perf_counter()
            for i in range(offset + start, offset + min(start + block, calls)):
                fn(i)
            per_block[name].append((time.perf_counter() - t0) / min(block, calls - start))
    return per_block


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=1000, help="distinct calls (default 1000)")
    parser.add_argument("--block", type=int, default=50, help="calls per block (default 50)")
    parser.add_argument("--hit-repeats", type=int, default=3, help="hit passes (default 3)")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="bench-small-", dir=os.environ.get("TMPDIR")))
    os.environ["KACHERY_CLOUD_DIR"] = str(scratch / "kachery")
    os.environ.pop("KACHERY_ZONE", None)
    import joblib

    from kachery_flows import Store, kachery_cached

    units = scratch / "units"
    units.mkdir()
    contenders: dict[str, Callable[[int], object]] = {
        "joblib": joblib.Memory(scratch / "joblib", verbose=0).cache(small),
        "k0": kachery_cached(store=Store(scratch / "k-nofsync", fsync=False))(small),
        "k1": kachery_cached(store=Store(scratch / "k-fsync", fsync=True))(small),
        "unit": _durable_write(units),
    }
    for fn in contenders.values():  # warm-up: directories, imports, first-call costs
        fn(-1)
    miss = _sweep(contenders, args.calls, args.block, 0)
    hit: dict[str, list[float]] = {name: [] for name in contenders if name != "unit"}
    for _ in range(args.hit_repeats):
        pass_times = _sweep({k: contenders[k] for k in hit}, args.calls, args.block, 0)
        for name, times in pass_times.items():
            hit[name].extend(times)
    med_miss = {name: statistics.median(t) for name, t in miss.items()}
    med_hit = {name: statistics.median(t) for name, t in hit.items()}
    unit, j_miss = med_miss["unit"], med_miss["joblib"]
    title = f"{args.calls} small calls (a dict from an int and a float), medians over blocks"
    print_comparison(title, [
        {"what": "miss, fsync off", "ours": med_miss["k0"], "anchor": j_miss,
         "anchor_name": "joblib.Memory", "target": "≤ 1.0× joblib"},
        {"what": "miss, fsync on (default)", "ours": med_miss["k1"], "anchor": j_miss,
         "anchor_name": "joblib.Memory, no fsync",
         "target": f"≤ joblib + 1.5 units = {fmt_seconds(j_miss + 1.5 * unit)}"},
        {"what": "hit, fsync off store", "ours": med_hit["k0"], "anchor": med_hit["joblib"],
         "anchor_name": "joblib.Memory", "target": "≥ 6× faster"},
        {"what": "hit, fsync on store", "ours": med_hit["k1"], "anchor": med_hit["joblib"],
         "anchor_name": "joblib.Memory", "target": "≥ 6× faster"},
    ])
    note(f"one small durable write on this disk (300 B: create, write, fsync, close): "
         f"{fmt_seconds(unit)}; fsync-on miss = joblib miss + "
         f"{(med_miss['k1'] - j_miss) / unit:.2f} units")
    note(f"bare function call: {fmt_seconds(_bare())}")
    shutil.rmtree(scratch, ignore_errors=True)


def _bare() -> float:
    t0 = time.perf_counter()
    for i in range(10_000):
        small(i)
    return (time.perf_counter() - t0) / 10_000


if __name__ == "__main__":
    main()
