"""Memoized calls under contention: many processes, shared zones, killed lock holders.

``tests/memoize/test_memo_concurrency.py`` covers a few processes and threads on one key,
stale locks of other hosts and dead local pids. Here: many processes on several keys from
two store roots sharing a zone directory (two "hosts"), a holder SIGKILLed while many
wait, and the lock file's own races (40 threads, no hard links, killed creators).
"""

from __future__ import annotations

import errno
import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from rel_funcs import runs, slow_series
from rel_helpers import Forker, count

from kachery_flows import Store, _lock
from kachery_flows._lock import FileLock
from kachery_flows.action_cache import action_cache
from kachery_flows.zones import LocalZone

N = 5000


def _check_consistent(roots: list[Path], zone_root: Path, seeds: list[int]) -> None:
    """Every entry names a readable record and an intact result; nothing left behind."""
    for root in roots:
        store = Store(root, zone=LocalZone(zone_root))
        cache = action_cache(store)
        for seed in seeds:
            entry = cache.get(slow_series.key(seed, N))
            assert entry is not None and cache.read_record(entry) is not None
        assert store.verify(temp_grace_seconds=0).ok
        assert not any(store.iter_temp_files())
    zone = Store(zone_root).verify(temp_grace_seconds=0)
    assert zone.ok and not zone.temp_files
    locks = zone_root / ".kachery-flows" / "locks"
    assert not locks.is_dir() or not any(locks.iterdir())


def test_many_processes_on_two_hosts_compute_each_key_once(
    forker: Forker, tmp_path: Path, zone_root: Path, figures: Any
) -> None:
    processes, keys = count("MEMO_PROCESSES", 16), 4
    roots = [tmp_path / "host-a", tmp_path / "host-b"]
    rng = random.Random(5)
    seeds = list(range(100, 100 + keys))
    calls = [
        {"root": str(roots[i % 2]), "seeds": rng.sample(seeds, keys)} for i in range(processes)
    ]
    go, marker = tmp_path / "go", str(tmp_path / "ran")
    forker.send(op="memo", calls=calls, n=N, delay=0.3, marker=marker, go=str(go))
    forker.receive()
    go.touch()
    codes = forker.receive()["exit_codes"]
    assert codes == [0] * processes, forker.log.read_text()
    executions = [runs(f"{marker}-{seed}") for seed in seeds]
    assert executions == [1] * keys
    _check_consistent(roots, zone_root, seeds)
    figures.add(
        "memo contention",
        f"{processes} processes on 2 store roots sharing a zone "
        f"directory, {keys} keys each: executions per key / failed calls",
        f"{executions} / 0",
    )


def test_a_killed_holder_is_replaced_by_exactly_one_waiter(
    forker: Forker, tmp_path: Path, zone_root: Path, figures: Any
) -> None:
    root, seed, marker = tmp_path / "host", 7, str(tmp_path / "ran")
    go = tmp_path / "go"
    go.touch()
    forker.send(
        op="memo",
        calls=[{"root": str(root), "seeds": [seed]}],
        n=N,
        delay=300.0,
        marker=marker,
        go=str(go),
    )
    (holder,) = forker.receive()["pids"]
    deadline = time.monotonic() + 60
    while runs(f"{marker}-{seed}") == 0:
        assert time.monotonic() < deadline, forker.log.read_text()
        time.sleep(0.01)
    waiters = count("MEMO_WAITERS", 8)
    # The waiters belong to a second forker: the first is busy reaping the holder.
    others = Forker(tmp_path / "forker2.log")
    try:
        others.send(
            op="memo",
            calls=[{"root": str(root), "seeds": [seed]}] * waiters,
            n=N,
            delay=0.3,
            marker=marker,
            go=str(go),
        )
        others.receive()
        time.sleep(0.5)  # they are polling the holder's lock now
        assert runs(f"{marker}-{seed}") == 1
        os.kill(holder, signal.SIGKILL)
        assert forker.receive()["exit_codes"] == [-signal.SIGKILL]
        codes = others.receive()["exit_codes"]
    finally:
        others.close()
    assert codes == [0] * waiters, others.log.read_text()
    assert runs(f"{marker}-{seed}") == 2
    _check_consistent([root], zone_root, [seed])
    figures.add(
        "memo contention",
        f"lock holder SIGKILLed with {waiters} waiters: "
        "executions (the killed one + its replacement)",
        runs(f"{marker}-{seed}"),
    )


def _hammer(path: Path, seconds: float, threads: int) -> tuple[int, int, list[BaseException]]:
    """``threads`` threads acquire/release one lock for ``seconds``: max holders, count."""
    holders = max_holders = acquired = 0
    errors: list[BaseException] = []
    guard = threading.Lock()
    start = threading.Barrier(threads)

    def work() -> None:
        nonlocal holders, max_holders, acquired
        try:
            start.wait()
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                lock = FileLock(path)
                if not lock.acquire():
                    continue
                with guard:
                    holders += 1
                    acquired += 1
                    max_holders = max(max_holders, holders)
                with guard:
                    holders -= 1
                lock.release()
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return max_holders, acquired, errors


@pytest.mark.parametrize("hard_links", [True, False])
def test_forty_threads_never_hold_one_lock_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hard_links: bool, figures: Any
) -> None:
    """borg's lock race test, with and without hard links (e.g. FAT, some FUSE mounts)."""
    if not hard_links:

        def no_link(src: object, dst: object) -> None:
            raise OSError(errno.EPERM, "Operation not permitted")

        monkeypatch.setattr(_lock.os, "link", no_link)
    max_holders, acquired, errors = _hammer(tmp_path / "locks" / "k.lock", 0.4, 40)
    assert errors == [] and max_holders == 1 and acquired > 0
    assert not any((tmp_path / "locks").iterdir())
    how = "hard links" if hard_links else "no hard links (exclusive create)"
    figures.add(
        "locks",
        f"40 threads x 0.4 s acquire/release, {how}: acquisitions / max holders / errors",
        f"{acquired} / {max_holders} / {len(errors)}",
    )


def test_a_creator_killed_before_linking_leaves_no_lock(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "k.lock"
    path.parent.mkdir()
    (path.parent / "k.lock.0123456789abcdef.tmp").write_text('{"pid": 1}')
    lock = FileLock(path)
    assert lock.acquire()
    lock.release()


def test_an_ownerless_lock_expires_after_the_unwritten_grace(tmp_path: Path) -> None:
    """Without hard links, a creator killed before writing leaves an empty lock file."""
    path = tmp_path / "k.lock"
    path.write_bytes(b"")
    assert not FileLock(path).acquire()  # it may be a live creator, about to write
    old = time.time() - _lock.UNWRITTEN_SECONDS - 1
    os.utime(path, (old, old))
    lock = FileLock(path)
    assert lock.acquire()
    lock.release()
    assert not path.exists()
