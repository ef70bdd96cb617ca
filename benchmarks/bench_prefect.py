"""A Prefect task returning a 100 MiB array: Prefect's default persistence vs kachery_task.

Side by side in one run, on one Prefect test server (``prefect_test_harness``, temp
database), flow heartbeats off:

* miss: a task run that persists and caches a new result (new inputs each round);
* hit: the same inputs again in a later flow run (Prefect reads the record to check the
  cache, then reads it for the value; its in-process LRU serves the second read);
* record: the bytes of Prefect's result record on disk (kachery: plus the npy object,
  which is the result in a form any kachery client can load by URI);
* State: what DaskTaskRunner ships from the worker per task run (the pickled State).

Contenders: ``@task(persist_result=True, cache_policy=INPUTS + TASK_SOURCE)`` (Prefect's
pickle serializer, base64 in a JSON record; ``DEFAULT`` includes the run id and never hits
across runs), ``@kachery_task``, ``@kachery_task(return_ref=True)`` (the task returns a
Ref; a hit does not load the array) and ``@kachery_task(artifact=True)`` (publishes a UI
artifact per persisted result; also timed on a 2-item result, where its API call is not
hidden by the array's write). In the timed runs the task returns an array built
beforehand (a different one per input), so the figures are persistence alone; the Dask run
fills a new array in the worker. Stores use their defaults: kachery fsyncs, Prefect's
local storage does not.

    python benchmarks/bench_prefect.py              # 100 MiB, 5 repetitions
    python benchmarks/bench_prefect.py --mib 20 --reps 3
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

_SCRATCH = Path(tempfile.mkdtemp(prefix="bench-prefect-"))
os.environ.update(
    PREFECT_HOME=str(_SCRATCH / "prefect-home"),
    PREFECT_SERVER_ANALYTICS_ENABLED="false",
    PREFECT_LOGGING_LEVEL="WARNING",
    PREFECT_LOGGING_TO_API_ENABLED="false",
    KACHERY_CLOUD_DIR=str(_SCRATCH / "kachery"),
)
os.environ.pop("KACHERY_ZONE", None)
os.environ.pop("PREFECT_API_URL", None)

# Prefect reads its settings when it is first imported: the environment comes first.
import cloudpickle  # noqa: E402
import numpy as np  # noqa: E402
from _common import interleaved, median, note, print_comparison, print_table  # noqa: E402
from prefect import flow, task  # noqa: E402
from prefect.cache_policies import INPUTS, TASK_SOURCE  # noqa: E402
from prefect.settings import (  # noqa: E402
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    PREFECT_RESULTS_LOCAL_STORAGE_PATH,
    temporary_settings,
)
from prefect.testing.utilities import prefect_test_harness  # noqa: E402

from kachery_flows.prefect import kachery_task  # noqa: E402

DEFAULT = "prefect default"
KACHERY = "kachery_task"
KACHERY_REF = "kachery_task(return_ref)"
KACHERY_ARTIFACT = "kachery_task(artifact)"


#: The arrays the timed tasks return, one per seed, built before timing starts: the task
#: body then costs nothing and the figures are Prefect's and kachery's persistence alone
#: (allocating and filling 100 MiB in the body costs both the same 0.05-0.25 s).
ARRAYS: dict[int, Any] = {}


def _precomputed(n: int, seed: int) -> Any:
    return ARRAYS[seed]


def _fill(n: int, seed: int) -> Any:
    return np.full(n, float(seed))


def _small(n: int, seed: int) -> list[int]:
    return [n, seed]


def _storage(results: Path, name: str) -> Path:
    return results / name.replace("(", "-").replace(")", "")


def _contenders(results: Path, body: Any, artifact: bool = False) -> dict[str, Any]:
    """The contenders for ``body``, each with its own result storage directory (with
    ``artifact``, also ``kachery_task(artifact=True)``, which publishes a UI artifact)."""
    tasks: dict[str, Any] = {
        DEFAULT: task(persist_result=True, cache_policy=INPUTS + TASK_SOURCE)(body),
        KACHERY: kachery_task(body),
        KACHERY_REF: kachery_task(return_ref=True)(body),
    }
    if artifact:
        tasks[KACHERY_ARTIFACT] = kachery_task(artifact=True)(body)
    for name, t in tasks.items():
        _storage(results, name).mkdir(parents=True)
        tasks[name] = t.with_options(name=name, result_storage=_storage(results, name))
    return tasks


def _record_size(results: Path, name: str) -> int:
    return int(median([p.stat().st_size for p in _storage(results, name).iterdir()]))


def _dask_state_sizes(tasks: dict[str, Any], n: int) -> dict[str, tuple[int, int]]:
    """Pickled size of each task's State as the Dask worker returns it, and of its data
    (the ResultRecord: what the result adds to Prefect's State envelope)."""
    from prefect_dask import DaskTaskRunner

    logging.getLogger("distributed").setLevel(logging.WARNING)

    runner = DaskTaskRunner(
        cluster_kwargs={
            "n_workers": 1,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": ":0",
            "host": "127.0.0.1",
        }
    )

    @flow(task_runner=runner)
    def shipped() -> dict[str, tuple[int, int]]:
        futures = {name: t.submit(n, 10_000) for name, t in tasks.items()}
        states = {name: f.wrapped_future.result() for name, f in futures.items()}
        return {
            name: (len(cloudpickle.dumps(state)), len(cloudpickle.dumps(state.data)))
            for name, state in states.items()
        }

    sizes: dict[str, tuple[int, int]] = shipped()
    return sizes


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=100, help="result size (default 100)")
    parser.add_argument("--reps", type=int, default=5, help="repetitions (default 5)")
    args = parser.parse_args()
    n = args.mib * (1 << 20) // 8
    results = _SCRATCH / "prefect-results"
    try:
        with (
            prefect_test_harness(server_startup_timeout=60),
            temporary_settings(
                {
                    PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None,
                    PREFECT_RESULTS_LOCAL_STORAGE_PATH: results,
                }
            ),
        ):
            ARRAYS.update((seed, np.full(n, float(seed))) for seed in range(args.reps + 1))
            tasks = _contenders(results / "timed", _precomputed, artifact=True)
            small = _contenders(results / "small", _small, artifact=True)

            @flow
            def timed(first_seed: int, reps: int) -> dict[str, list[float]]:
                # round r runs each task on (n, first_seed + r): new inputs in the first
                # flow run with these seeds (misses), cached in the next one (hits)
                cases = {name: (lambda r, t=t: t(n, first_seed + r)) for name, t in tasks.items()}
                return interleaved(cases, reps)

            timed(0, 1)  # warm-up of the miss and the hit path, not reported
            timed(0, 1)
            misses = timed(1, args.reps)
            hits = timed(1, args.reps)

            @flow
            def small_misses(first_seed: int, reps: int) -> dict[str, list[float]]:
                cases = {name: (lambda r, t=t: t(3, first_seed + r)) for name, t in small.items()}
                return interleaved(cases, reps)

            small_misses(10_000, 1)  # warm-up
            small_miss = small_misses(20_000, 5 * args.reps)
            records = {name: _record_size(results / "timed", name) for name in tasks}
            states = _dask_state_sizes(_contenders(results / "dask", _fill), n)
        title = f"a task returning a {args.mib} MiB float64 array (median of {args.reps})"
        miss = {name: median(ts) for name, ts in misses.items()}
        hit = {name: median(ts) for name, ts in hits.items()}
        print_table(f"{title}: miss (persist a new result)", list(miss.items()), DEFAULT)
        print_table(f"{title}: hit (cached, new flow run)", list(hit.items()), DEFAULT)
        print_comparison(
            f"{title}: kachery_task against Prefect's default persistence",
            [
                {
                    "what": "miss (persist a new result)",
                    "ours": miss[KACHERY],
                    "anchor": miss[DEFAULT],
                    "anchor_name": DEFAULT,
                    "target": ">= 3x faster",
                },
                {
                    "what": "hit (new flow run)",
                    "ours": hit[KACHERY],
                    "anchor": hit[DEFAULT],
                    "anchor_name": DEFAULT,
                    "target": ">= 4x faster",
                },
                {
                    "what": "hit, return_ref (no load)",
                    "ours": hit[KACHERY_REF],
                    "anchor": hit[DEFAULT],
                    "anchor_name": DEFAULT,
                },
            ],
        )
        small = {name: median(ts) for name, ts in small_miss.items()}
        print_table(
            "a task returning a 2-item list: miss (persist a new result), "
            f"median of {5 * args.reps}",
            list(small.items()),
            DEFAULT,
        )
        extra_small = (small[KACHERY_ARTIFACT] - small[KACHERY]) * 1e3
        extra_big = (miss[KACHERY_ARTIFACT] - miss[KACHERY]) * 1e3
        note(
            f"UI artifact per persisted result: {extra_small:+.1f} ms on a small result, "
            f"{extra_big:+.1f} ms on the {args.mib} MiB one (one API call): off by default"
        )
        print()
        for name in states:
            state, data = states[name]
            note(
                f"{name}: record on disk {_fmt_bytes(records[name])}, State shipped under "
                f"DaskTaskRunner {_fmt_bytes(state)} (its result record {_fmt_bytes(data)})"
            )
        note(
            f"targets: record < 1 KB, State < 1 KB; kachery objects: one npy of "
            f"{_fmt_bytes(n * 8 + 128)} per result; Prefect's State envelope alone pickles "
            "to ~1 KB"
        )
    finally:
        shutil.rmtree(_SCRATCH, ignore_errors=True)


if __name__ == "__main__":
    main()
