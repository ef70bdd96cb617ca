"""The reverse index (result -> producing record): written by the memo path, O(1) to read,
rebuilt and pruned by gc."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

import kachery_flows as kf
from kachery_flows import Ref, Store, kachery_cached
from kachery_flows._lineage_index import index_name, lookup
from kachery_flows.action_cache import action_cache
from kachery_flows.garbage import collect_garbage
from kachery_flows.memoize import CachedFunction


def make_store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store", fsync=False)


def entry_path(store: Store, sha1: str) -> Path:
    return store.root / ".kachery-flows" / "refs" / index_name(sha1)


def ramp_on(store: Store) -> CachedFunction[[int], Ref]:
    @kachery_cached(return_ref=True, store=store)
    def ramp(n: int) -> np.ndarray:
        return np.arange(float(n))

    return ramp


def age(path: Path) -> None:
    os.utime(path, (1, 1))


def test_the_memo_path_indexes_every_result(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    ramp = ramp_on(store)

    ref = ramp(5)
    entry = action_cache(store).get(ramp.key(5))
    assert entry is not None and entry.result == ref.sha1
    assert lookup(action_cache(store).refs, ref.sha1) == (entry.record, None)
    assert entry_path(store, ref.sha1).read_text() == f"kfl1 {entry.record}"
    assert lookup(action_cache(store).refs, "0" * 40) == (None, None)


def test_gc_rebuilds_missing_entries_and_drops_collected_ones(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    ramp = ramp_on(store)

    kept, dropped = ramp(3), ramp(4)
    entry_path(store, kept.sha1).unlink()  # e.g. a store from before the index
    assert kf.lineage(kept.uri, store=store).nodes[kept.sha1].status == "source"
    report = collect_garbage(store, dry_run=True)
    assert report.live_records == 2 and not entry_path(store, kept.sha1).exists()
    collect_garbage(store)
    assert kf.lineage(kept.uri, store=store).nodes[kept.sha1].status == "computed"

    record = lookup(action_cache(store).refs, dropped.sha1)[0]
    assert record is not None
    assert ramp.clear(4) == 1
    for sha1 in (dropped.sha1, record):
        age(store.object_path(f"sha1://{sha1}"))
        age(store.cache_mark_path(sha1))
    report = collect_garbage(store, older_than_days=0.5)
    assert set(report.deleted_objects) == {dropped.sha1, record}
    assert not entry_path(store, dropped.sha1).exists()
    assert entry_path(store, kept.sha1).exists()


def test_gc_drops_an_entry_whose_record_it_collected(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    ramp = ramp_on(store)

    ref = ramp(6)
    record = lookup(action_cache(store).refs, ref.sha1)[0]
    assert record is not None
    store.store_npy(np.arange(6.0))  # the user stores the same bytes: never collected
    ramp.clear(6)
    age(store.object_path(f"sha1://{record}"))
    age(store.cache_mark_path(record))
    report = collect_garbage(store, older_than_days=0.5)
    assert report.deleted_objects == [record] and store.exists(ref)
    assert not entry_path(store, ref.sha1).exists()
    assert kf.lineage(ref.uri, store=store).nodes[ref.sha1].status == "source"


def test_with_a_zone_the_index_lives_in_the_zone(tmp_path: Path) -> None:
    zone = tmp_path / "zone"
    a = Store(tmp_path / "a", zone=f"file://{zone}", fsync=False)
    b = Store(tmp_path / "b", zone=f"file://{zone}", fsync=False)
    ramp = ramp_on(a)

    ref = ramp(7)
    assert (zone / "refs" / index_name(ref.sha1)).is_file()
    assert not entry_path(a, ref.sha1).exists()
    node = kf.lineage(ref.uri, store=b).nodes[ref.sha1]
    assert node.status == "computed" and node.inputs[0].value == 7
