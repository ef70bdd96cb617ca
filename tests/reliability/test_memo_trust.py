"""Memo hits never unpickle results the user's store did not pickle, and gc never deletes
what a record it cannot read might reach.

A colleague (or an intruder) who can write to a shared zone can point a memo key at a
pickle of their own. Such an entry must be a miss: the call recomputes and overwrites it,
and the pickle is never loaded, unless the user opted in to trusting the zone's pickles.
Results the store pickled itself stay hits, in this and in other processes; npy, json
and bytes results need no trust.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kachery_flows import Ref, Store, kachery_cached
from kachery_flows.action_cache import CacheEntry, action_cache
from kachery_flows.garbage import collect_garbage
from kachery_flows.zones import LocalZone, open_zone


class Payload:
    """Unpickling this writes ``marker``: the sign that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (Path(self.marker), "pwned"))


_RUNS: list[Any] = []  # a global: values captured by a closure would be part of the key


@pytest.fixture(autouse=True)
def _clear_runs() -> None:
    _RUNS.clear()


def _cached(store: Store) -> Any:
    """A cached function on ``store`` whose pickled result is a tuple; it logs its
    executions in ``_RUNS``."""

    @kachery_cached(store=store, version="1")
    def summary(x: int) -> Any:
        _RUNS.append(x)
        return (x, "a tuple is pickled", {x: float(x)})

    return summary


def _plant(zone_store: Store, key: str, result: Ref, codec: str = "pkl") -> None:
    """Write a ref-map entry for ``key`` pointing at ``result``, as another user would."""
    cache = action_cache(zone_store)
    size = zone_store.object_path(result).stat().st_size
    record = cache.write_record({"schema": "kachery-flows-record-1", "key": key})
    cache._set(key, CacheEntry(record.sha1, result.sha1, codec, size))


@pytest.fixture
def zone(tmp_path: Path) -> LocalZone:
    return LocalZone(tmp_path / "lab-zone", fsync=False)


@pytest.fixture
def intruder(tmp_path: Path, zone: LocalZone) -> Store:
    """Another user's store on the same zone."""
    return Store(tmp_path / "intruder", zone=zone, fsync=False)


def test_a_planted_pickle_is_never_unpickled_by_a_hit(
    tmp_path: Path,
    zone: LocalZone,
    intruder: Store,
    caplog: pytest.LogCaptureFixture,
    figures: Any,
) -> None:
    marker = tmp_path / "marker"
    evil = intruder.put_bytes(pickle.dumps(Payload(str(marker)), protocol=4))
    mine = Store(tmp_path / "mine", zone=zone, fsync=False)
    summary = _cached(mine)
    planted, count = 0, 20
    with caplog.at_level(logging.INFO, logger="kachery_flows.memoize"):
        for x in range(count):
            _plant(intruder, summary.key(x), evil)
            assert not summary.is_cached(x)
            assert summary(x) == (x, "a tuple is pickled", {x: float(x)})
            planted += 1
        # the entries were overwritten with the user's own results: hits now
        for x in range(count):
            assert summary(x) == (x, "a tuple is pickled", {x: float(x)})
            assert summary.is_cached(x)
    assert not marker.exists()
    assert list(range(count)) == _RUNS
    messages = [r.getMessage() for r in caplog.records if "not unpickling" in r.message]
    assert len(messages) == 1 and evil.sha1 in messages[0]  # once per result, not per hit
    assert all(r.levelno < logging.WARNING for r in caplog.records)
    figures.add(
        "memo trust",
        "planted malicious pickle entries in a shared zone: planted / "
        "recomputed / payload executed",
        f"{planted} / {len(_RUNS)} / 0",
    )


def test_own_pickles_are_hits_in_other_processes_and_stores_sharing_the_root(
    tmp_path: Path, zone: LocalZone
) -> None:
    first = _cached(Store(tmp_path / "mine", zone=zone, fsync=False))
    first(1)
    # a new process: no in-memory state, same root
    again = _cached(Store(tmp_path / "mine", zone=zone, fsync=False))
    action_cache(again.store)._trusted.clear()
    assert again(1) == (1, "a tuple is pickled", {1: 1.0}) and _RUNS == [1]


def test_hits_never_grant_trust(tmp_path: Path, zone: LocalZone, intruder: Store) -> None:
    """A hit on someone else's pickle (here: with trust enabled) must not make that pickle
    trusted for a store that did not opt in."""
    result = intruder.put_bytes(pickle.dumps((5, "from elsewhere"), protocol=4))
    mine_root = tmp_path / "mine"
    trusting = _cached(Store(mine_root, zone=zone, fsync=False, trust_zone_pickles=True))
    _plant(intruder, trusting.key(5), result)
    assert trusting(5) == (5, "from elsewhere") and _RUNS == []  # opted in: a hit
    cautious = _cached(Store(mine_root, zone=zone, fsync=False))
    assert not cautious.is_cached(5)
    assert cautious(5) == (5, "a tuple is pickled", {5: 5.0}) and _RUNS == [5]
    assert not action_cache(cautious.store).trusted_path(result.sha1).exists()


@pytest.mark.parametrize("how", ["zones.json", "environment", "argument"])
def test_opting_in_trusts_the_zones_pickles(
    tmp_path: Path,
    zone: LocalZone,
    intruder: Store,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    result = intruder.put_bytes(pickle.dumps({"shared": "by a colleague"}, protocol=4))
    root = tmp_path / "mine"
    if how == "zones.json":
        root.mkdir()
        (root / "zones.json").write_text(
            f'{{"lab": {{"url": "file://{zone.root}", "trust_pickles": true}}}}'
        )
        store = Store(root, zone=open_zone("lab", root=root), fsync=False)
    elif how == "environment":
        monkeypatch.setenv("KACHERY_FLOWS_TRUST_ZONE_PICKLES", "1")
        store = Store(root, zone=zone, fsync=False)
    else:
        store = Store(root, zone=zone, fsync=False, trust_zone_pickles=True)
    summary = _cached(store)
    _plant(intruder, summary.key(3), result)
    assert summary.is_cached(3)
    assert summary(3) == {"shared": "by a colleague"} and _RUNS == []


def test_zones_json_trust_must_be_a_boolean(tmp_path: Path) -> None:
    from kachery_flows import ZoneError

    (tmp_path / "zones.json").write_text(
        f'{{"lab": {{"url": "file://{tmp_path}/z", "trust_pickles": "yes"}}}}'
    )
    with pytest.raises(ZoneError, match="trust_pickles"):
        open_zone("lab", root=tmp_path)


def test_results_without_code_need_no_trust(
    tmp_path: Path, zone: LocalZone, intruder: Store
) -> None:
    """npy, json and bytes results written by others are hits (hash-verified, no code)."""
    mine = Store(tmp_path / "mine", zone=zone, fsync=False)

    @kachery_cached(store=mine, version="1")
    def anything(kind: str) -> Any:
        _RUNS.append(kind)
        return None

    theirs = {
        "npy": (intruder.put_npy(np.arange(4.0)), np.arange(4.0)),
        "json": (intruder.put_json({"a": [1, 2]}), {"a": [1, 2]}),
        "bytes": (intruder.put_bytes(b"raw"), b"raw"),
    }
    for codec, (ref, value) in theirs.items():
        _plant(intruder, anything.key(codec), ref, codec)
        got = anything(codec)
        assert np.array_equal(got, value) if codec == "npy" else got == value
    assert _RUNS == []


def test_the_return_ref_path_hands_out_refs_without_loading(
    tmp_path: Path, zone: LocalZone, intruder: Store
) -> None:
    marker = tmp_path / "marker"
    evil = intruder.put_bytes(pickle.dumps(Payload(str(marker)), protocol=4))
    mine = Store(tmp_path / "mine", zone=zone, fsync=False)
    summary = _cached(mine)
    _plant(intruder, summary.key(9), evil)
    ref = summary.ref(9)  # names the zone's result; nothing is unpickled
    assert ref.sha1 == evil.sha1 and ref.codec == "pkl" and _RUNS == []
    from kachery_flows import UnsafePickleError

    with pytest.raises(UnsafePickleError):
        ref.load(store=mine)
    assert not marker.exists()


def test_gc_forgets_trust_with_the_result(tmp_path: Path) -> None:
    store = Store(tmp_path / "mine", fsync=False)
    summary = _cached(store)
    summary(1)
    sha1 = summary.ref(1).sha1
    trusted = action_cache(store).trusted_path(sha1)
    assert trusted.exists()
    _age(store.root)
    assert collect_garbage(store, older_than_days=1).removed_trust_markers == []
    summary.clear(1)
    report = collect_garbage(store, older_than_days=1)
    assert report.removed_trust_markers == [sha1] and sha1 in report.deleted_objects
    assert not trusted.exists()


def _age(root: Path, days: float = 10) -> None:
    when = time.time() - days * 86400
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, (when, when))


# ------------------------------------------------------------------ gc and records
def test_a_damaged_record_never_makes_gc_delete_what_it_reached(
    tmp_path: Path, figures: Any
) -> None:
    """A live entry whose record cannot be read (missing, truncated, or a flipped digit in
    a URI it lists) must not let gc treat the objects it reaches as unreachable (git's
    t5312 principle)."""
    store = Store(tmp_path / "gc", fsync=False)

    @kachery_cached(store=store, version="1")
    def inner(n: int) -> Any:
        return np.arange(float(n))

    @kachery_cached(store=store, version="1")
    def outer(n: int) -> Any:
        return {"inner": inner.ref(n).uri}

    damages = {
        "missing": lambda data: None,
        "truncated": lambda data: data[: len(data) // 2],
        "digit flipped in a listed URI": _flip_a_digit_of_the_nested_uri,
    }
    kept = 0
    for n, (what, damage) in enumerate(damages.items(), start=10):
        nested = inner.ref(n)
        outer(n)
        inner.clear(n)  # the nested result is now reached only through outer's record
        entry = action_cache(store).get(outer.key(n))
        assert entry is not None
        record_path = store.object_path(f"sha1://{entry.record}")
        damaged = damage(record_path.read_bytes())
        record_path.unlink()
        if damaged is not None:
            record_path.write_bytes(damaged)
        _age(store.root)
        report = collect_garbage(store, older_than_days=1)
        assert store.object_path(nested).exists(), what
        assert outer.key(n) in report.unreadable_records, what
        kept += 1
    figures.add(
        "corruption",
        "gc with live records missing / truncated / misdirected: objects they reach kept",
        f"{kept}/{len(damages)}",
    )


def _flip_a_digit_of_the_nested_uri(data: bytes) -> bytes:
    start = data.index(b'"refs":["sha1://') + len(b'"refs":["sha1://')
    i = next(i for i in range(start, start + 40) if data[i : i + 1] in b"02468")
    return data[:i] + bytes([data[i] ^ 1]) + data[i + 1 :]
