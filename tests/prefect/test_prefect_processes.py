"""Prefect caches shared between Python processes: through a shared result storage
directory plus a shared kachery zone, and deduplicated with Prefect's SERIALIZABLE
isolation and a file lock manager. Subprocesses use the session's Prefect API server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect_tasks import make_signal, runs

from kachery_flows import Store

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent

HIT_SCRIPT = """
import json, sys
from prefect import flow
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from prefect_tasks import make_signal

@flow
def one(n: int, seed: int):
    return make_signal(n, seed, return_state=True)

if __name__ == "__main__":
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        state = one(int(sys.argv[1]), int(sys.argv[2]))
    value = state.result()
    print(json.dumps({"state": state.name, "sum": float(value.sum()),
                      "type": type(value).__name__}))
"""

DEDUP_SCRIPT = """
import json, os, sys, time
from pathlib import Path
from prefect import flow
from prefect.locking.filesystem import FileSystemLockManager
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from kachery_flows.prefect import KACHERY_DEFAULT, kachery_task

work, locked = Path(sys.argv[1]), sys.argv[2] == "locked"
policy = KACHERY_DEFAULT
if locked:
    policy = KACHERY_DEFAULT.configure(
        isolation_level="SERIALIZABLE",
        lock_manager=FileSystemLockManager(lock_files_directory=work / "locks"),
    )


@kachery_task(cache_policy=policy)
def expensive(x: int) -> int:
    with open(work / "runs.txt", "a") as f:
        f.write("run\\n")
    deadline = time.monotonic() + 20
    if locked:  # hold the lock until the other process is surely waiting for it
        while len(list(work.glob("ready-*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
    else:  # the control: wait until the other process's body runs too
        while (work / "runs.txt").read_text().count("run") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    return x * 10


@flow
def once(x: int):
    return expensive(x, return_state=True)


if __name__ == "__main__":
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        (work / f"ready-{os.getpid()}").touch()
        state = once(int(sys.argv[3]))
    print(json.dumps({"state": state.name, "value": state.result()}))
"""


def _env(prefect_api_url: str, results_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join([str(HERE), *filter(None, [env.get("PYTHONPATH")])]),
        PREFECT_API_URL=prefect_api_url,
        PREFECT_RESULTS_LOCAL_STORAGE_PATH=str(results_dir),
        PREFECT_LOGGING_LEVEL="WARNING",
    )
    env.update(extra)
    return env


def _start(script: Path, args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _output(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def test_another_machine_hits_the_cache_through_shared_results_and_zone(
    prefect_api_url: str, results_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "runs.txt"
    zone = tmp_path / "zone"
    monkeypatch.setenv("KF_TEST_MARKER", str(marker))
    monkeypatch.setenv("KACHERY_ZONE", f"file://{zone}")

    @flow
    def one(n: int, seed: int) -> Any:
        return make_signal(n, seed, return_state=True)

    state = one(5000, 11)
    assert state.name == "Completed"
    expected = float(state.result().sum())
    script = tmp_path / "hit.py"
    script.write_text(HIT_SCRIPT)
    machine_b = tmp_path / "machine-b"
    out = _output(
        _start(
            script,
            ["5000", "11"],
            _env(
                prefect_api_url,
                results_dir,
                KACHERY_CLOUD_DIR=str(machine_b),
            ),
        )
    )
    assert out == {"state": "Cached", "sum": expected, "type": "ndarray"}
    assert runs(marker, "make_signal") == 1
    b_objects = set(Store(machine_b).iter_hashes())
    assert b_objects and b_objects <= set(Store(zone).iter_hashes())  # fetched from the zone


def test_concurrent_runs_compute_once_with_serializable_isolation(
    prefect_api_url: str, results_dir: Path, tmp_path: Path
) -> None:
    script = tmp_path / "dedup.py"
    script.write_text(DEDUP_SCRIPT)
    env = _env(prefect_api_url, results_dir)
    work = {}
    for mode in ("locked", "control"):
        work[mode] = tmp_path / mode
        (work[mode] / "locks").mkdir(parents=True)
    procs = [
        _start(script, [str(work[mode]), mode, x], env)
        for mode, x in (("locked", "4"), ("locked", "4"), ("control", "5"), ("control", "5"))
    ]
    outs = [_output(p) for p in procs]
    assert sorted(o["state"] for o in outs[:2]) == ["Cached", "Completed"]
    assert [o["value"] for o in outs] == [40, 40, 50, 50]
    assert runs(work["locked"] / "runs.txt") == 1
    assert not list((work["locked"] / "locks").iterdir())  # the lock was released
    # without the lock both processes ran the body: the two really overlapped
    assert runs(work["control"] / "runs.txt") == 2
