"""Concurrent writers and killed writers never leave a partial or corrupt object.

* 32 processes store one large object at once (into a store and its shared-directory
  zone) while readers poll the final paths: every read sees all the bytes or nothing.
  A control run with naive writers (``open(final, "wb")``) shows the readers do catch
  partial objects when there are any.
* Writers (plain stores, and memoized calls) are SIGKILLed at random points, round after
  round: afterwards no object is corrupt, in the store or the zone, every memoized call
  returns the right value, and the orphan temp files the kills left are found by
  ``verify`` and removed by ``gc`` (in the zone directory too, by running them on it).
* A process that forks after storing a large object has children that can store too.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rel_funcs import memo_series, series
from rel_helpers import Forker, count

from kachery_flows import Store, get_default_store
from kachery_flows.action_cache import action_cache
from kachery_flows.garbage import collect_garbage


class Readers:
    """Threads that read whole files at ``paths`` in a loop and check their hash."""

    def __init__(self, paths: list[str], sha1: str, threads: int = 2) -> None:
        self.paths, self.sha1 = paths, sha1
        self.good = self.torn = self.absent = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]
        for t in self._threads:
            t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for path in self.paths:
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                except FileNotFoundError:
                    with self._lock:
                        self.absent += 1
                    continue
                ok = hashlib.sha1(data).hexdigest() == self.sha1
                with self._lock:
                    if ok:
                        self.good += 1
                    else:
                        self.torn += 1

    def stop(self, extra_reads: int = 20) -> None:
        """Stop after at least ``extra_reads`` more good reads (the object exists now)."""
        target = self.good + extra_reads
        while self.good < target and self.torn == 0:
            self._stop.wait(0.005)
        self._stop.set()
        for t in self._threads:
            t.join()


def _race(
    forker: Forker, tmp_path: Path, zone_root: Path, *, naive: bool, seed: int
) -> tuple[list[int], Readers]:
    go = tmp_path / f"go-{seed}"
    size = count("RACE_MIB", 8) << 20
    forker.send(
        op="race", writers=count("RACE_WRITERS", 32), size=size, seed=seed, go=str(go), naive=naive
    )
    info = forker.receive()
    zone_path = zone_root / Path(info["path"]).relative_to(get_default_store().root)
    readers = Readers([info["path"], str(zone_path)], info["sha1"])
    go.touch()
    codes = forker.receive()["exit_codes"]
    readers.stop()
    return codes, readers


def test_32_writers_of_one_object_with_polling_readers(
    forker: Forker, tmp_path: Path, zone_root: Path, figures: Any
) -> None:
    codes, readers = _race(forker, tmp_path, zone_root, naive=False, seed=1)
    assert codes == [0] * len(codes), forker.log.read_text()
    assert readers.torn == 0
    assert readers.good >= 20
    store = get_default_store()
    for root in (store.root, zone_root):
        report = Store(root).verify(temp_grace_seconds=0)
        assert report.ok and report.checked == 1 and not report.temp_files
    figures.add(
        "torn writes",
        f"{len(codes)} processes store one {count('RACE_MIB', 8)} MiB "
        "object (store + zone), 2 readers polling: reads good / partial",
        f"{readers.good} / {readers.torn}",
    )


def test_control_naive_writers_are_caught_tearing(
    forker: Forker, tmp_path: Path, zone_root: Path, figures: Any
) -> None:
    """The same race with writers that write the final path in place: the readers see
    partial objects, so the zero above is a real measurement."""
    codes, readers = _race(forker, tmp_path, zone_root, naive=True, seed=2)
    assert codes == [0] * len(codes), forker.log.read_text()
    assert readers.torn > 0
    figures.add(
        "torn writes",
        "control: naive in-place writers, same race: reads good / partial",
        f"{readers.good} / {readers.torn}",
    )


def _kill_rounds(
    forker: Forker,
    zone_root: Path,
    tmp_path: Path,
    *,
    rounds: int,
    min_size: int,
    max_size: int,
    max_delay: float,
    seed: int,
) -> dict[str, Any]:
    """Run the rounds; check the store, the zone and every memoized call; return figures."""
    forker.send(
        op="kill",
        rounds=rounds,
        min_size=min_size,
        max_size=max_size,
        max_delay=max_delay,
        seed=seed,
        memo_every=4,
    )
    results = forker.receive(timeout=600)["rounds"]
    store = get_default_store()
    zone_store = Store(zone_root)
    local, zone = store.verify(temp_grace_seconds=0), zone_store.verify(temp_grace_seconds=0)
    assert local.corrupt == [] and zone.corrupt == []
    for item in results:
        if item["kind"] == "put" and not item["killed"]:
            assert store.object_path(f"sha1://{item['sha1']}").is_file()
            assert zone_store.object_path(f"sha1://{item['sha1']}").is_file()
    marker = tmp_path / "recomputed"
    memo = [item for item in results if item["kind"] == "memo"]
    cache = action_cache(store)
    for item in memo:
        entry = cache.get(memo_series.key(item["seed"], item["n"]))
        if entry is not None:  # an entry is only ever written whole, after its record
            assert cache.read_record(entry) is not None
        value = memo_series(item["seed"], item["n"], str(marker))
        assert np.array_equal(value, series(item["seed"], item["n"]))
    recomputed = len(marker.read_text().split()) if marker.exists() else 0
    completed_memo = sum(not item["killed"] for item in memo)
    assert recomputed <= len(memo) - completed_memo  # finished calls are hits
    return {
        "rounds": len(results),
        "killed": sum(item["killed"] for item in results),
        "memo": len(memo),
        "memo_completed": completed_memo,
        "recomputed": recomputed,
        "temps": local.temp_files + zone.temp_files,
        "corrupt": len(local.corrupt) + len(zone.corrupt),
        "objects": local.checked + zone.checked,
    }


def test_writers_killed_at_random_points_leave_no_corrupt_object(
    forker: Forker, zone_root: Path, tmp_path: Path, figures: Any
) -> None:
    stats = _kill_rounds(
        forker,
        zone_root,
        tmp_path,
        rounds=count("KILL_ROUNDS", 200),
        min_size=64 << 10,
        max_size=1 << 20,
        max_delay=0.012,
        seed=3,
    )
    assert stats["killed"] > 0
    removed: list[str] = []
    for root in (get_default_store().root, zone_root):  # gc on the zone directory cleans it
        removed += collect_garbage(Store(root), older_than_days=0).removed_temp_files
    assert sorted(removed) == sorted(stats["temps"])
    for root in (get_default_store().root, zone_root):
        assert not any(Store(root).iter_temp_files())
        locks = root / ".kachery-flows" / "locks"
        assert not locks.is_dir() or not any(locks.iterdir())
    figures.add(
        "kill -9",
        "writers SIGKILLed at random 0-12 ms (64 KiB-1 MiB, every 4th a "
        "memoized call, store + zone): rounds / killed / corrupt objects",
        f"{stats['rounds']} / {stats['killed']} / {stats['corrupt']} "
        f"(of {stats['objects']} objects)",
    )
    figures.add(
        "kill -9",
        "orphan temp files found by verify / removed by gc",
        f"{len(stats['temps'])} / {len(removed)}",
    )
    figures.add(
        "kill -9",
        "memoized calls re-run after the kills: calls / completed before "
        "the kill / recomputed / wrong values",
        f"{stats['memo']} / {stats['memo_completed']} / {stats['recomputed']} / 0",
    )


@pytest.mark.slow
def test_writers_of_larger_objects_with_fsync_killed(
    tmp_path: Path, zone_root: Path, monkeypatch: pytest.MonkeyPatch, figures: Any
) -> None:
    """The longer variant: 1-4 MiB objects, fsync on, ``verify(remove_temp=True)``.
    ``KACHERY_FLOWS_RELIABILITY_SLOW_KILL_ROUNDS`` sets the count (CI: 40)."""
    monkeypatch.setenv("KACHERY_FLOWS_FSYNC", "1")
    forker = Forker(tmp_path / "forker.log")
    try:
        stats = _kill_rounds(
            forker,
            zone_root,
            tmp_path,
            rounds=count("SLOW_KILL_ROUNDS", 40),
            min_size=1 << 20,
            max_size=4 << 20,
            max_delay=0.08,
            seed=4,
        )
    finally:
        forker.close()
    removed: list[str] = []
    for root in (get_default_store().root, zone_root):
        removed += Store(root).verify(remove_temp=True, temp_grace_seconds=0).removed_temp_files
    assert sorted(removed) == sorted(stats["temps"])
    assert not any(get_default_store().iter_temp_files())
    figures.add(
        "kill -9",
        "slow variant: 1-4 MiB, fsync on, killed at 0-80 ms: rounds / "
        "killed / corrupt / temps removed by verify",
        f"{stats['rounds']} / {stats['killed']} / {stats['corrupt']} / {len(removed)}",
    )


def _store_in_child(root: str, value: float) -> str:
    return Store(root, fsync=False).store_npy(np.full(300_000, value))


def _memo_in_child(seed: int) -> float:
    return float(memo_series(seed, 200_000)[0])


# Python >= 3.12 warns when a process with threads forks; that is the situation tested.
@pytest.mark.filterwarnings("ignore:.*use of fork\\(\\) may lead to deadlocks:DeprecationWarning")
def test_children_forked_after_large_stores_can_store(tmp_path: Path, figures: Any) -> None:
    """Storing >= 1 MiB (or a memoized array result) starts a helper thread; a child
    forked afterwards (multiprocessing's default on Linux) must not wait for it forever."""
    root = str(tmp_path / "forked")
    parent = _store_in_child(root, -1.0)
    memo_series(0, 200_000)
    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:
        stored = pool.starmap_async(_store_in_child, [(root, float(i)) for i in range(4)])
        memo = pool.map_async(_memo_in_child, range(1, 5))
        uris = stored.get(timeout=60)
        firsts = memo.get(timeout=60)
    assert len(set(uris)) == 4 and parent not in uris
    assert firsts == [float(series(seed, 200_000)[0]) for seed in range(1, 5)]
    assert Store(root).verify().ok and get_default_store().verify().ok
    figures.add(
        "fork",
        "children forked after large stores and memo calls: stores done",
        f"{len(uris) + len(firsts)}/8",
    )
