"""Small results live inline in their entry: a miss writes the entry (and the index), a
hit reads nothing else; the objects appear, as ordinary cache objects, the moment a URI
can leave the cache; entries that lie about their bytes are misses."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from memo_helpers import age, python_env

from kachery_flows import Store, get_default_store, kachery_cached, load_json
from kachery_flows.action_cache import INLINE_TAG, action_cache
from kachery_flows.garbage import collect_garbage
from kachery_flows.records import read_record_object
from kachery_flows.zones import LocalZone


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def _counting() -> tuple[Any, list[int]]:
    runs: list[int] = []

    @kachery_cached
    def small(i: int) -> dict[str, Any]:
        runs.append(i)
        return {"label": f"p{i}", "i": i, "sq": [i, i * i]}  # unsorted keys: pickled

    return small, runs


def test_a_small_miss_writes_its_entry_and_index_only() -> None:
    """Even a pickled result: the entry in this store's own ref map vouches for it."""
    small, runs = _counting()
    small(0)  # the first call makes the store's directories and lock table
    root = get_default_store().root
    before = _files(root)
    assert small(1) == {"i": 1, "label": "p1", "sq": [1, 1]}
    created = _files(root) - before
    kinds = sorted(path.split("/")[-3] for path in created)
    assert kinds == ["keys", "refs"], created  # index, entry (no trust marker: see below)
    entry_text = (root / ".kachery-flows" / "refs" / "memo" / small.key(1)).read_text()
    assert entry_text.startswith(INLINE_TAG + " ")
    assert small(1) == {"i": 1, "label": "p1", "sq": [1, 1]} and runs == [0, 1]
    assert type(small(1)) is dict


@pytest.mark.parametrize("value", [{"a": 1, "b": [1.5, "x"]}, b"raw bytes", (1, "two"), 3.25])
def test_hits_return_equal_values_of_the_same_types(value: Any) -> None:
    runs: list[int] = []

    @kachery_cached
    def produce(i: int) -> Any:
        runs.append(i)
        return value

    first, again = produce(0), produce(0)
    assert first == again == value and type(again) is type(value) and runs == [0]
    entry = action_cache(get_default_store()).get(produce.key(0))
    assert entry is not None and entry.result_data is not None


def test_uris_work_once_they_leave_the_cache() -> None:
    store = get_default_store()

    @kachery_cached
    def produce(i: int) -> dict[str, Any]:
        return {"i": i}

    produce(3)
    entry = action_cache(store).get(produce.key(3))
    assert entry is not None
    assert not store.object_path(f"sha1://{entry.result}").exists()
    ref = produce.ref(3)
    assert load_json(ref) == {"i": 3}
    assert store.cache_mark_path(ref.sha1).exists()  # collectable like any memo object
    record = produce.record(3)
    assert record is not None and record["result"]["uri"] == ref.uri
    assert read_record_object(store, entry.record) == record

    @kachery_cached(return_ref=True)
    def produce_ref(i: int) -> dict[str, Any]:
        return {"j": i}

    assert load_json(produce_ref(4)) == {"j": 4}
    assert load_json(produce_ref(4)) == {"j": 4}  # the hit too


def test_entries_whose_bytes_do_not_match_their_hashes_are_misses() -> None:
    small, runs = _counting()
    small(5)
    path = get_default_store().root / ".kachery-flows" / "refs" / "memo" / small.key(5)
    parts = path.read_text().split()
    for index in (6, 7):  # the record's bytes, the result's bytes
        damaged = list(parts)
        damaged[index] = damaged[index][:-4] + ("AAAA" if damaged[index][-4:] != "AAAA" else "BBBB")
        path.write_text(" ".join(damaged))
        assert small(5) == {"i": 5, "label": "p5", "sq": [5, 25]}
    assert runs == [5, 5, 5]


def test_inline_pickles_from_elsewhere_are_never_unpickled(tmp_path: Path) -> None:
    """An inline pickle in an entry this store did not write (here: a read-only zone's,
    which the local ref map falls back to) is a miss, and nothing of it is unpickled."""
    small, runs = _counting()
    small(6)
    zone = LocalZone(tmp_path / "zone")
    src = get_default_store().root / ".kachery-flows" / "refs" / "memo" / small.key(6)
    other = Store(tmp_path / "other", fsync=False, zone=LocalZone(zone.root, read_only=True))
    theirs = kachery_cached(store=other)(small.__wrapped__)
    zone.set_ref(f"memo/{theirs.key(6)}", src.read_text())
    entry = action_cache(other).get(theirs.key(6))
    assert entry is not None and entry.codec == "pkl" and entry.result_data is not None
    assert not theirs.is_cached(6)
    assert theirs(6) == {"label": "p6", "i": 6, "sq": [6, 36]}
    assert runs == [6, 6]
    # in this store's own ref map, the same bytes are its own: a hit in a new process
    code = (
        "import sys; from kachery_flows import Store, kachery_cached\n"
        "def f(i): return (i, 'x')\n"
        "g = kachery_cached(version='1', store=Store(sys.argv[1], fsync=False))(f)\n"
        "print(g.is_cached(1), g(1))"
    )
    root = str(tmp_path / "own")
    first = subprocess.run(
        [sys.executable, "-c", code, root],
        env=python_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    again = subprocess.run(
        [sys.executable, "-c", code, root],
        env=python_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert first.split() == ["False", "(1,", "'x')"] and again.split()[0] == "True"
    assert not (Path(root) / ".kachery-flows" / "memo" / "trusted").exists()


def test_large_results_are_ordinary_objects() -> None:
    @kachery_cached
    def big(n: int) -> list[int]:
        return list(range(n))

    big(2000)
    entry = action_cache(get_default_store()).get(big.key(2000))
    assert entry is not None and entry.result_data is None
    assert get_default_store().object_path(f"sha1://{entry.result}").is_file()


def test_gc_keeps_what_inline_records_reach_and_collects_cleared_objects() -> None:
    store = get_default_store()
    small, _ = _counting()
    ref = small.ref(7)  # materialized
    record_sha1 = action_cache(store).get(small.key(7)).record  # type: ignore[union-attr]
    small(8)  # inline only
    age(store.root, 10)
    report = collect_garbage()
    assert report.deleted_objects == [] and report.unreadable_records == []
    assert report.live_records == 2
    assert small.clear(7) == 1
    report = collect_garbage()
    assert sorted(report.deleted_objects) == sorted([ref.sha1, record_sha1])
    assert small.is_cached(8)


CHILD = """
import sys
from kachery_flows import Store, kachery_cached

@kachery_cached(store=Store(sys.argv[1], fsync=sys.argv[2] == "1"))
def small(i):
    return {"i": i, "twice": [i, 2 * i]}

print("ready", flush=True)
for i in range(100_000):
    small(i)
"""


@pytest.mark.parametrize("fsync", ["0", "1"])
def test_small_misses_killed_at_random_points_leave_only_good_entries(
    tmp_path: Path, fsync: str
) -> None:
    root = tmp_path / "store"
    rng = random.Random(int(fsync))
    for _ in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(root), fsync],
            env=python_env(),
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    store = Store(root, fsync=False)
    cache = action_cache(store)
    names = sorted(os.listdir(root / ".kachery-flows" / "refs" / "memo"))
    assert names, "the children wrote no entries"
    for key in names:  # every entry is whole: its record and value agree with its inputs
        entry = cache.get(key)
        assert entry is not None and entry.result_data is not None
        record = cache.read_record(entry)
        assert record is not None and record["key"] == key
        i = record["inputs"]["i"]["value"]
        assert cache.load(entry) == {"i": i, "twice": [i, 2 * i]}
    assert store.verify(temp_grace_seconds=0).corrupt == []
