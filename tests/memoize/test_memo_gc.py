"""Garbage collection: only unreachable cache objects past the grace period, never objects
stored on purpose, never anything a live record reaches; record expiry is explicit."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import memo_funcs
import numpy as np
import pytest
from memo_helpers import age

import kachery_flows
from kachery_flows import Ref, Store, get_default_store, kachery_cached
from kachery_flows.action_cache import action_cache
from kachery_flows.cli import main
from kachery_flows.garbage import collect_garbage
from kachery_flows.zones import LocalZone


def _exists(ref: Ref | str, store: Store | None = None) -> bool:
    return (store or get_default_store()).object_path(ref).is_file()


def _record_sha1(fn: Any, *args: Any) -> str:
    entry = action_cache(get_default_store()).get(fn.key(*args))
    assert entry is not None
    return entry.record


def test_live_records_and_user_objects_survive_cleared_entries_go(marker: str) -> None:
    store = get_default_store()
    user_npy = kachery_flows.store_npy(np.arange(10))
    user_json = kachery_flows.store_json({"mine": True})
    signal = memo_funcs.make_signal.ref(100, 1, marker)
    square = memo_funcs.slow_square.ref(2.0, marker)
    square_record = _record_sha1(memo_funcs.slow_square, 2.0, marker)
    signal_record = _record_sha1(memo_funcs.make_signal, 100, 1, marker)
    age(store.root, 10)

    report = collect_garbage()
    assert report.deleted_objects == [] and report.live_records == 2

    assert memo_funcs.slow_square.clear(2.0, marker) == 1
    report = collect_garbage()
    assert sorted(report.deleted_objects) == sorted([square.sha1, square_record])
    assert report.deleted_bytes > 0
    assert not _exists(square) and not _exists(f"sha1://{square_record}")
    for uri in (user_npy, user_json, signal, f"sha1://{signal_record}"):
        assert _exists(uri)
    assert not store.cache_mark_path(square.sha1).exists()
    assert memo_funcs.make_signal.is_cached(100, 1, marker)


def test_unmarked_objects_are_never_collected(marker: str) -> None:
    store = get_default_store()
    assert list(store.iter_hashes()) == []
    kachery_flows.store_text("shared with a colleague")
    kachery_flows.store_pkl([1, 2, 3])
    age(store.root, 100)
    report = collect_garbage(older_than_days=0)
    assert report.deleted_objects == [] and len(list(store.iter_hashes())) == 2


def test_young_unreachable_objects_are_kept_and_dry_run_deletes_nothing(marker: str) -> None:
    square = memo_funcs.slow_square.ref(3.0, marker)
    memo_funcs.slow_square.clear(3.0, marker)
    report = collect_garbage()
    assert report.deleted_objects == [] and square.sha1 in report.kept_recent
    age(get_default_store().root, 2)
    report = collect_garbage(dry_run=True)
    assert square.sha1 in report.deleted_objects and _exists(square)
    assert collect_garbage().deleted_objects == report.deleted_objects
    assert not _exists(square)


def test_storing_cache_bytes_on_purpose_protects_them(marker: str) -> None:
    signal = memo_funcs.make_signal(64, 3, marker)
    ref = memo_funcs.make_signal.ref(64, 3, marker)
    assert kachery_flows.store_npy(np.array(signal)) == f"sha1://{ref.sha1}"  # shared now
    memo_funcs.make_signal.clear()
    age(get_default_store().root, 5)
    report = collect_garbage()
    assert ref.sha1 not in report.deleted_objects and _exists(ref)
    assert len(report.deleted_objects) == 1  # the record only


def test_cache_results_equal_to_user_objects_are_not_marked(marker: str) -> None:
    uri = kachery_flows.store_npy(np.random.default_rng(4).standard_normal(64))
    assert memo_funcs.make_signal.ref(64, 4, marker).uri.split("?")[0] == uri
    memo_funcs.make_signal.clear()
    age(get_default_store().root, 5)
    collect_garbage()
    assert _exists(uri)


def test_replaced_records_are_collected(marker: str) -> None:
    ref = memo_funcs.make_signal.ref(32, 5, marker)
    old_record = _record_sha1(memo_funcs.make_signal, 32, 5, marker)
    get_default_store().object_path(ref).unlink()
    time.sleep(1.1)  # a new "created" second makes a new record object
    memo_funcs.make_signal(32, 5, marker)
    new_record = _record_sha1(memo_funcs.make_signal, 32, 5, marker)
    assert new_record != old_record and memo_funcs.count(marker) == 2
    age(get_default_store().root, 5)
    assert collect_garbage().deleted_objects == [old_record]
    assert memo_funcs.make_signal.is_cached(32, 5, marker)


@kachery_cached(ignore=["marker"])
def wrapped_ref(n: int, marker: str) -> Any:
    return {"signal": memo_funcs.signal_ref(n, 6, marker)}


def test_refs_inside_results_and_input_refs_are_reached(marker: str) -> None:
    inner = memo_funcs.signal_ref(16, 6, marker)
    assert wrapped_ref(16, marker) == {"signal": inner}
    memo_funcs.total_of_ref(inner, marker)
    memo_funcs.signal_ref.clear()
    age(get_default_store().root, 5)
    collect_garbage()
    assert _exists(inner)  # inside wrapped_ref's result, and total_of_ref's input
    wrapped_ref.clear()
    collect_garbage()
    assert _exists(inner)  # still total_of_ref's input
    memo_funcs.total_of_ref.clear()
    collect_garbage()
    assert not _exists(inner)


def test_orphan_temp_files_are_removed_after_the_grace_period() -> None:
    store = get_default_store()
    kachery_flows.store_text("x")
    old_temp = store.staging_dir / "abc.part"
    young_temp = store.staging_dir / "def.part"
    old_temp.write_bytes(b"partial")
    shard_temp = next(store.root.glob("sha1/*/*/*")) / "tmp.1234"
    shard_temp.write_bytes(b"partial")
    age(store.root, 3)
    young_temp.write_bytes(b"live writer")
    report = collect_garbage()
    assert sorted(report.removed_temp_files) == sorted([str(old_temp), str(shard_temp)])
    assert young_temp.exists() and not old_temp.exists() and not shard_temp.exists()


def test_records_expire_only_by_explicit_policy_lru_first(marker: str) -> None:
    cache = action_cache(get_default_store())
    keys = []
    for x, days in ((1.0, 40), (2.0, 20), (3.0, 0)):
        memo_funcs.slow_square(x, marker)
        key = memo_funcs.slow_square.key(x, marker)
        when = time.time() - days * 86400
        os.utime(cache.index_path(key), (when, when))
        keys.append(key)
    assert collect_garbage().expired_records == []  # no policy: nothing expires
    report = collect_garbage(expire_records_days=10, dry_run=True)
    assert report.expired_records == [keys[0], keys[1]]  # least recently used first
    assert memo_funcs.slow_square.is_cached(1.0, marker)
    report = collect_garbage(expire_records_days=30)
    assert report.expired_records == [keys[0]]
    assert not memo_funcs.slow_square.is_cached(1.0, marker)
    assert memo_funcs.slow_square.is_cached(2.0, marker)


def test_gc_never_deletes_from_a_zone(tmp_path: Path) -> None:
    zone = LocalZone(tmp_path / "zone", fsync=False)
    store = Store(tmp_path / "local", zone=zone, fsync=False)

    @kachery_cached(store=store)
    def series(n: int) -> Any:
        return np.arange(n)

    ref = series.ref(8)
    assert zone.has(ref.sha1) and zone.get_ref(f"memo/{series.key(8)}") is not None
    series.clear()
    assert zone.get_ref(f"memo/{series.key(8)}") is None
    age(tmp_path, 5)
    report = collect_garbage(store)
    assert ref.sha1 in report.deleted_objects and not _exists(ref, store)
    assert zone.has(ref.sha1)


def test_zone_records_are_shared_and_results_fetched(tmp_path: Path) -> None:
    zone = LocalZone(tmp_path / "zone", fsync=False)
    runs: list[int] = []

    def make(root: str) -> Any:
        @kachery_cached(store=Store(tmp_path / root, zone=zone, fsync=False))
        def series(n: int) -> Any:
            runs.append(n)
            return np.arange(n) * 2

        return series

    first, second = make("machine-a"), make("machine-b")
    assert np.array_equal(first(5), np.arange(5) * 2)
    assert second.is_cached(5)
    value = second(5)
    assert isinstance(value, np.memmap) and np.array_equal(value, np.arange(5) * 2)
    assert runs == [5]
    fetched = tmp_path / "machine-b" / "sha1"
    assert any(p.is_file() for p in fetched.rglob("*"))
    # fetched copies are cache objects: collectable once no record reaches them
    second.clear()
    age(tmp_path / "machine-b", 5)
    assert len(collect_garbage(Store(tmp_path / "machine-b", zone=zone)).deleted_objects) == 1


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().out


def test_cli_gc_and_info(marker: str, capsys: pytest.CaptureFixture[str]) -> None:
    ref = memo_funcs.signal_ref(20, 7, marker)
    key = memo_funcs.signal_ref.key(20, 7, marker)
    record_sha1 = _record_sha1(memo_funcs.signal_ref, 20, 7, marker)

    code, out = run_cli(capsys, "info", key)
    assert code == 0
    for text in (
        "function: memo_funcs.signal_ref",
        "n: int value=20",
        ref.sha1,
        "duration:",
        "host:",
        "created:",
        "(present)",
    ):
        assert text in out
    code, out = run_cli(capsys, "info", key, "--json")
    info = json.loads(out)
    assert info["kind"] == "memo" and info["record"]["inputs"]["seed"]["value"] == 7
    code, out = run_cli(capsys, "info", f"sha1://{record_sha1}", "--json")
    info = json.loads(out)
    assert info["kind"] == "record" and info["record"]["key"] == key and info["cache_object"]
    code, out = run_cli(capsys, "info", ref.uri, "--json")
    info = json.loads(out)
    assert info["kind"] == "object" and info["produced_by"] == [key]
    code, _ = run_cli(capsys, "info", "0" * 40)
    assert code == 3

    memo_funcs.signal_ref.clear()
    age(get_default_store().root, 3)
    code, out = run_cli(capsys, "gc", "--dry-run", "--json")
    report = json.loads(out)
    assert (
        code == 0
        and report["dry_run"]
        and sorted(report["deleted_objects"]) == sorted([ref.sha1, record_sha1])
    )
    assert _exists(ref)
    code, out = run_cli(capsys, "gc", "--older-than", "2")
    assert code == 0 and f"deleted: sha1://{ref.sha1}" in out and "2 cache object(s)" in out
    assert not _exists(ref)
    code, out = run_cli(capsys, "gc", "--expire-records", "0", "--json")
    assert json.loads(out)["deleted_objects"] == []


_RUNS: list[int] = []  # a global, not a captured value: captured values are part of the key


def test_read_only_zone_entries_are_read_new_ones_written_locally(tmp_path: Path) -> None:
    runs = _RUNS
    runs.clear()

    def make(store: Store) -> Any:
        @kachery_cached(store=store)
        def series(n: int) -> Any:
            _RUNS.append(n)
            return np.arange(n)

        return series

    publisher = make(Store(tmp_path / "lab", zone=LocalZone(tmp_path / "zone"), fsync=False))
    publisher(4)
    read_only = LocalZone(tmp_path / "zone")
    read_only.writable = False
    reader_store = Store(tmp_path / "reader", zone=read_only, fsync=False)
    reader = make(reader_store)
    assert np.array_equal(reader(4), np.arange(4)) and runs == [4]
    reader(6)
    assert runs == [4, 6]
    assert (tmp_path / "reader" / ".kachery-flows" / "refs" / "memo" / reader.key(6)).is_file()
    assert LocalZone(tmp_path / "zone").get_ref(f"memo/{reader.key(6)}") is None
