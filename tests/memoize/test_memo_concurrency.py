"""Concurrent calls with one key compute once: threads, processes, hosts sharing a zone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import memo_funcs
import pytest
from memo_helpers import python_env

from kachery_flows import _lock, _range_lock, get_default_store
from kachery_flows._lock import FileLock
from kachery_flows.action_cache import action_cache

# Each process imports everything, then waits for the start file, so all call at once.
CALL = """
import os, sys, time
import memo_funcs
while not os.path.exists(sys.argv[2]):
    time.sleep(0.002)
print(memo_funcs.slow_square(7.0, sys.argv[1], delay={delay}))
"""


def _start(
    marker: str, delay: float, start_file: Path | None = None, **env: str
) -> subprocess.Popen[str]:
    go = start_file if start_file is not None else Path(marker + ".go")
    if start_file is None:
        go.touch()
    return subprocess.Popen(
        [sys.executable, "-c", CALL.format(delay=delay), marker, str(go)],
        env=python_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    return out.strip()


def _wait_for(condition: object, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_processes_calling_at_once_compute_once(tmp_path: Path, marker: str) -> None:
    go = tmp_path / "go"
    procs = [_start(marker, 1.0, go) for _ in range(4)]
    time.sleep(1.0)  # let them import (not required for correctness, only for overlap)
    go.touch()
    outputs = [_finish(p) for p in procs]
    assert outputs == ["49.0"] * 4
    assert memo_funcs.count(marker) == 1


def test_hosts_sharing_a_zone_directory_compute_once(tmp_path: Path, marker: str) -> None:
    zone = f"file://{tmp_path / 'zone'}"
    go = tmp_path / "go"
    procs = [
        _start(marker, 1.0, go, KACHERY_CLOUD_DIR=str(tmp_path / f"host{i}"), KACHERY_ZONE=zone)
        for i in range(3)
    ]
    time.sleep(1.0)
    go.touch()
    assert [_finish(p) for p in procs] == ["49.0"] * 3
    assert memo_funcs.count(marker) == 1
    locks = tmp_path / "zone" / ".kachery-flows" / "locks"
    assert locks.is_dir() and not any(locks.iterdir())  # lock files, all removed


def test_threads_calling_at_once_compute_once(marker: str) -> None:
    results: list[float] = []
    threads = [
        threading.Thread(target=lambda: results.append(memo_funcs.slow_square(3.0, marker, 0.5)))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert results == [9.0] * 4
    assert memo_funcs.count(marker) == 1


@pytest.fixture
def shared_zone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A shared-directory zone: its compute locks are lock files (FileLock)."""
    env = {"KACHERY_ZONE": f"file://{tmp_path / 'zone'}"}
    monkeypatch.setenv("KACHERY_ZONE", env["KACHERY_ZONE"])
    return env


def _lock_path(marker: str, x: float) -> Path:
    key = memo_funcs.slow_square.key(x, marker)
    lock = action_cache(get_default_store()).lock(key)
    assert isinstance(lock, FileLock)
    return lock.path


def _write_lock(path: Path, **info: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"time": time.time(), "nonce": "x", **info}))


def test_lock_of_a_dead_process_on_this_host_is_broken_at_once(
    marker: str, shared_zone: dict[str, str]
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    path = _lock_path(marker, 5.0)
    _write_lock(path, pid=int(done.stdout), host=_lock._host())
    assert memo_funcs.slow_square(5.0, marker) == 25.0
    assert memo_funcs.count(marker) == 1 and not path.exists()


def test_fresh_lock_from_another_host_is_waited_for_until_stale(
    marker: str, monkeypatch: pytest.MonkeyPatch, shared_zone: dict[str, str]
) -> None:
    monkeypatch.setattr(_lock, "STALE_SECONDS", 30.0)
    path = _lock_path(marker, 6.0)
    _write_lock(path, pid=1, host="another-host")
    results: list[float] = []
    waiter = threading.Thread(target=lambda: results.append(memo_funcs.slow_square(6.0, marker)))
    waiter.start()
    time.sleep(0.5)
    assert waiter.is_alive() and memo_funcs.count(marker) == 0
    old = time.time() - 60
    os.utime(path, (old, old))  # the other host stopped refreshing it
    waiter.join(timeout=120)
    assert results == [36.0] and memo_funcs.count(marker) == 1


def test_killed_holder_leaves_a_lock_that_is_broken(
    marker: str, shared_zone: dict[str, str]
) -> None:
    holder = _start(marker, delay=300.0, **shared_zone)
    _wait_for(lambda: memo_funcs.count(marker) == 1)
    path = _lock_path(marker, 7.0)
    assert path.exists()
    holder.send_signal(signal.SIGKILL)
    holder.communicate(timeout=60)
    assert memo_funcs.slow_square(7.0, marker) == 49.0
    assert memo_funcs.count(marker) == 2 and not path.exists()


def test_a_killed_holder_of_a_range_lock_frees_it_at_once(marker: str) -> None:
    """A store's own locks are byte-range locks: the kernel drops them with the process,
    and no lock file is ever created."""
    cache = action_cache(get_default_store())
    assert cache.lock_table is not None
    holder = _start(marker, delay=300.0)
    _wait_for(lambda: memo_funcs.count(marker) == 1)
    lock = cache.lock(memo_funcs.slow_square.key(7.0, marker))
    assert not lock.acquire()  # held by the other process
    holder.send_signal(signal.SIGKILL)
    holder.communicate(timeout=60)
    _wait_for(lock.acquire, timeout=10)
    lock.release()
    start = time.monotonic()
    assert memo_funcs.slow_square(7.0, marker) == 49.0
    assert time.monotonic() - start < _lock.UNWRITTEN_SECONDS
    assert memo_funcs.count(marker) == 2
    assert not cache.lock_dir.exists()


def test_range_locks_keep_threads_of_one_process_apart(tmp_path: Path) -> None:
    table = tmp_path / "lock-table"
    key = "ab" * 20
    first, second = _range_lock.RangeLock(table, key), _range_lock.RangeLock(table, key)
    other = _range_lock.RangeLock(table, "cd" * 20)
    assert first.acquire() and not second.acquire() and other.acquire()
    first.release()
    assert second.acquire()
    second.release()
    other.release()
    assert table.is_file() and [p.name for p in tmp_path.iterdir()] == ["lock-table"]


PLANTED = """
import os, sys
from kachery_flows import Store, kachery_cached
from kachery_flows.errors import StoreWriteError

@kachery_cached(store=Store(sys.argv[1], fsync=False))
def double(x):
    return 2 * x

try:
    print(double(21))
except StoreWriteError as exc:
    print("refused:", exc)
"""


@pytest.mark.parametrize("planted", ["fifo", "symlink"])
def test_a_fifo_or_symlink_at_the_lock_table_never_hangs_a_call(
    tmp_path: Path, planted: str
) -> None:
    root = tmp_path / "store"
    table = root / ".kachery-flows" / "lock-table"
    table.parent.mkdir(parents=True)
    if planted == "fifo":
        os.mkfifo(table)
    else:
        (tmp_path / "elsewhere").write_text("")
        table.symlink_to(tmp_path / "elsewhere")
    proc = subprocess.run(
        [sys.executable, "-c", PLANTED, str(root)],
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("refused:") and "lock table" in proc.stdout
    assert (tmp_path / "elsewhere").exists() or planted == "fifo"


def test_a_fifo_at_a_shared_lock_path_never_hangs_a_call(
    marker: str, shared_zone: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _lock_path(marker, 8.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    old = time.time() - 3600
    os.utime(path, (old, old))
    code = "import sys, memo_funcs; print(memo_funcs.slow_square(8.0, sys.argv[1]))"
    proc = subprocess.run(
        [sys.executable, "-c", code, marker],
        env=python_env(**shared_zone),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "64.0"


def test_waiters_get_the_holders_result(marker: str) -> None:
    holder = _start(marker, delay=2.0)
    _wait_for(lambda: memo_funcs.count(marker) == 1)
    assert memo_funcs.slow_square(7.0, marker) == 49.0  # waits, then hits
    assert _finish(holder) == "49.0"
    assert memo_funcs.count(marker) == 1


def test_heartbeat_keeps_a_held_lock_fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_lock, "HEARTBEAT_SECONDS", 0.05)
    lock = FileLock(tmp_path / "locks" / "k.lock")
    assert lock.acquire()
    other = FileLock(tmp_path / "locks" / "k.lock")
    assert not other.acquire()
    old = time.time() - 3600
    os.utime(lock.path, (old, old))
    _wait_for(lambda: lock.path.stat().st_mtime > old + 60)
    lock.release()
    assert not lock.path.exists()
    assert other.acquire()
    other.release()


def test_release_never_removes_someone_elses_lock(tmp_path: Path) -> None:
    lock = FileLock(tmp_path / "k.lock")
    assert lock.acquire()
    _write_lock(lock.path, pid=os.getpid(), host=_lock._host())  # taken over meanwhile
    lock.release()
    assert lock.path.exists()
