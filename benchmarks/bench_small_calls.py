"""Sweeps of small memoized calls: @kachery_cached against joblib.Memory, side by side.

A sweep calls a cheap function with ``--calls`` distinct small arguments (the first
calls: misses), then repeats them (hits). The contenders run in interleaved blocks of
``--block`` calls (joblib, kachery-flows with fsync off, kachery-flows with fsync on, in
turn), so machine noise falls on all of them alike; each figure is the median over
blocks of the mean time per call. All stores live in one temp dir on the same disk, and
the unit "one small durable write" (create a 300-byte file, write, fsync, close, on that
disk) is measured in the same run, interleaved too.

The same small function is then run as Prefect tasks (``@kachery_task`` against
Prefect's own persistence, ``persist_result=True`` with ``INPUTS + TASK_SOURCE``, and an
uncached task, on one ``prefect_test_harness`` server) and as Dask tasks (``@kachery_cached``
against the bare function, ``client.submit`` on a 2-worker LocalCluster, one future at a
time so each figure is the per-task round trip): misses, then hits in a new flow run or
with new futures.

    python benchmarks/bench_small_calls.py                 # 1000 calls, blocks of 50
    python benchmarks/bench_small_calls.py --calls 4000
    python benchmarks/bench_small_calls.py --tasks 0       # skip Prefect and Dask
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
    parser.add_argument(
        "--tasks",
        type=int,
        default=40,
        help="Prefect and Dask tasks per contender (default 40; 0: skip)",
    )
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
    print_comparison(
        title,
        [
            {
                "what": "miss, fsync off",
                "ours": med_miss["k0"],
                "anchor": j_miss,
                "anchor_name": "joblib.Memory",
                "target": "≤ 1.0× joblib",
            },
            {
                "what": "miss, fsync on (default)",
                "ours": med_miss["k1"],
                "anchor": j_miss,
                "anchor_name": "joblib.Memory, no fsync",
                "target": f"≤ joblib + 1.5 units = {fmt_seconds(j_miss + 1.5 * unit)}",
            },
            {
                "what": "hit, fsync off store",
                "ours": med_hit["k0"],
                "anchor": med_hit["joblib"],
                "anchor_name": "joblib.Memory",
                "target": "≥ 6× faster",
            },
            {
                "what": "hit, fsync on store",
                "ours": med_hit["k1"],
                "anchor": med_hit["joblib"],
                "anchor_name": "joblib.Memory",
                "target": "≥ 6× faster",
            },
        ],
    )
    note(
        f"one small durable write on this disk (300 B: create, write, fsync, close): "
        f"{fmt_seconds(unit)}; fsync-on miss = joblib miss + "
        f"{(med_miss['k1'] - j_miss) / unit:.2f} units"
    )
    note(f"bare function call: {fmt_seconds(_bare())}")
    if args.tasks:
        _prefect(scratch, args.tasks)
        _dask(scratch, args.tasks)
    shutil.rmtree(scratch, ignore_errors=True)


def _timed_rounds(
    cases: dict[str, Callable[[int], object]], first: int, n: int
) -> dict[str, float]:
    """Median seconds per call of each case over ``n`` interleaved rounds (inputs
    ``first .. first + n - 1``)."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for r in range(first, first + n):
        for name, fn in cases.items():
            t0 = time.perf_counter()
            fn(r)
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def _prefect(scratch: Path, n: int) -> None:
    """kachery_task against Prefect's default persistence, small results."""
    os.environ.update(
        PREFECT_HOME=str(scratch / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_LOGGING_TO_API_ENABLED="false",
    )
    os.environ.pop("PREFECT_API_URL", None)
    from prefect import flow, task
    from prefect.cache_policies import INPUTS, TASK_SOURCE
    from prefect.settings import (
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        PREFECT_RESULTS_LOCAL_STORAGE_PATH,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    from kachery_flows.prefect import kachery_task

    tasks = {
        "prefect, no persistence": task(small),
        "prefect default persistence": task(persist_result=True, cache_policy=INPUTS + TASK_SOURCE)(
            small
        ),
        "kachery_task": kachery_task(small),
    }

    @flow
    def sweep(first: int, count: int) -> dict[str, float]:
        return _timed_rounds({k: (lambda i, t=t: t(i)) for k, t in tasks.items()}, first, count)

    with (
        prefect_test_harness(server_startup_timeout=60),
        temporary_settings(
            {
                PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None,
                PREFECT_RESULTS_LOCAL_STORAGE_PATH: scratch / "prefect-results",
            }
        ),
    ):
        sweep(-3, 2)
        sweep(-3, 2)
        miss, hit = sweep(0, n), sweep(0, n)
    base = "prefect, no persistence"
    print_comparison(
        f"Prefect tasks returning a small dict ({n} tasks, medians)",
        [
            {
                "what": "miss: task run that persists a new result",
                "ours": miss["kachery_task"],
                "anchor": miss["prefect default persistence"],
                "anchor_name": "Prefect INPUTS+TASK_SOURCE",
                "target": "-",
            },
            {
                "what": "hit: cached result, new flow run",
                "ours": hit["kachery_task"],
                "anchor": hit["prefect default persistence"],
                "anchor_name": "Prefect INPUTS+TASK_SOURCE",
                "target": "-",
            },
        ],
    )
    note(
        f"Prefect task run without persistence (the floor): {fmt_seconds(miss[base])}; "
        f"kachery_task adds {fmt_seconds(miss['kachery_task'] - miss[base])} to a miss, "
        f"Prefect's persistence {fmt_seconds(miss['prefect default persistence'] - miss[base])}"
    )


def _dask(scratch: Path, n: int) -> None:
    """@kachery_cached on Dask workers against the bare function, small results."""
    import logging

    from distributed import Client, LocalCluster

    from kachery_flows import kachery_cached

    logging.getLogger("distributed").setLevel(logging.WARNING)
    cached = kachery_cached(small)
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.WARNING,
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(os.environ.__setitem__, "KACHERY_CLOUD_DIR", str(scratch / "dask-kachery"))

        def submit(fn: Callable[[int], object]) -> Callable[[int], object]:
            return lambda i: client.submit(fn, i, pure=False).result()

        cases = {"bare": submit(small), "cached": submit(cached)}
        _timed_rounds(cases, -5, 3)
        miss, hit = _timed_rounds(cases, 0, n), _timed_rounds(cases, 0, n)
    print_comparison(
        f"Dask tasks returning a small dict ({n} tasks, one at a time, medians)",
        [
            {
                "what": "@kachery_cached miss (compute + store on the worker)",
                "ours": miss["cached"],
                "anchor": miss["bare"],
                "anchor_name": "bare function task",
                "target": "-",
            },
            {
                "what": "@kachery_cached hit",
                "ours": hit["cached"],
                "anchor": hit["bare"],
                "anchor_name": "bare function task",
                "target": "-",
            },
        ],
    )


def _bare() -> float:
    t0 = time.perf_counter()
    for i in range(10_000):
        small(i)
    return (time.perf_counter() - t0) / 10_000


if __name__ == "__main__":
    main()
