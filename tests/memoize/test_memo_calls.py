"""Calling cached functions: hits, result codecs, refs, records, methods, async, repair."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import kachery_flows
from kachery_flows import Ref, Store, get_default_store, kachery_cached
from kachery_flows.action_cache import action_cache
from kachery_flows.records import RECORD_SCHEMA


@dataclasses.dataclass
class Fit:
    slope: float
    labels: tuple[str, ...]


def counting(results: list[Any]) -> tuple[Any, list[int]]:
    """A cached function returning results[i] on its i-th execution, and the call log."""
    log: list[int] = []

    # version= pins the code: the captured ``results`` (no content token) stay out of the key
    @kachery_cached(version="test")
    def produce(i: int) -> Any:
        log.append(i)
        return results[i]

    return produce, log


VALUES: list[Any] = [
    {"a": [1, 2.5, "x", None, True]},
    (1, 2),
    {2: "int key"},
    {"b": 1, "a": 2},
    [np.float64(1.5), np.int32(3)],
    Fit(0.5, ("a", "b")),
    OrderedDict(z=1),
    b"\x00raw bytes",
    None,
    -0.0,
    {1, 2, 3},
    "text",
    [float("nan")],
]
NAN_LIST = VALUES[-1]


@pytest.mark.parametrize("index", range(len(VALUES)))
def test_hits_return_equal_values_of_the_same_types(index: int) -> None:
    produce, log = counting(VALUES)
    first = produce(index)
    second = produce(index)
    assert log == [index]
    expected = VALUES[index]
    if expected is not NAN_LIST:  # a nan never equals another nan object
        assert second == expected
    assert repr(second) == repr(expected)
    assert type(second) is type(expected) and first is expected
    if isinstance(expected, dict):
        assert list(second) == list(expected)


def test_codecs_chosen_for_results() -> None:
    produce, _ = counting([{"a": 1}, (1,), b"x", np.arange(3)])
    assert produce.ref(0).codec == "json"
    assert produce.ref(1).codec == "pkl"
    assert produce.ref(2).codec == "bytes"
    ref = produce.ref(3)
    assert ref.codec == "npy" and ref.label == "produce.npy"
    assert np.array_equal(kachery_flows.load_npy(ref.uri), np.arange(3))


def test_array_hits_are_read_only_memory_maps(marker: str) -> None:
    import memo_funcs

    fresh = memo_funcs.make_signal(1000, 1, marker)
    hit = memo_funcs.make_signal(1000, 1, marker)
    assert memo_funcs.count(marker) == 1
    assert isinstance(hit, np.memmap) and not hit.flags.writeable
    assert np.array_equal(hit, fresh)
    with pytest.raises(ValueError):
        hit[0] = 1.0


def test_hit_arrays_key_like_fresh_ones_without_rehashing(
    marker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import memo_funcs

    fresh = memo_funcs.make_signal(5000, 2, marker)
    hit = memo_funcs.make_signal(5000, 2, marker)
    expected = memo_funcs.total.key(fresh, marker)

    def no_hashing(*args: Any) -> Any:
        raise AssertionError("the array was hashed again")

    monkeypatch.setattr("kachery_flows.tokens.xxhash.xxh3_128", no_hashing)
    assert memo_funcs.total.key(hit, marker) == expected
    assert memo_funcs.total(hit, marker) == pytest.approx(float(fresh.sum()))
    with pytest.raises(AssertionError, match="hashed again"):
        memo_funcs.total.key(np.array(hit), marker)


def test_return_ref_and_ref_never_load(monkeypatch: pytest.MonkeyPatch, marker: str) -> None:
    import memo_funcs

    ref = memo_funcs.signal_ref(100, 3, marker)
    assert isinstance(ref, Ref) and ref.codec == "npy"
    assert memo_funcs.signal_ref(100, 3, marker) == ref
    assert memo_funcs.count(marker) == 1

    def no_loading(*args: Any) -> Any:
        raise AssertionError("loaded")

    monkeypatch.setattr("kachery_flows.action_cache.load_result", no_loading)
    assert memo_funcs.signal_ref(100, 3, marker) == ref
    assert memo_funcs.make_signal.ref(100, 3, marker).codec == "npy"
    assert memo_funcs.count(marker) == 2  # make_signal computed once for .ref()
    assert memo_funcs.make_signal.ref(100, 3, marker) == memo_funcs.make_signal.ref(100, 3, "x")
    assert memo_funcs.count(marker) == 2


def test_ref_arguments_and_records(marker: str) -> None:
    import memo_funcs

    ref = memo_funcs.signal_ref(50, 4, marker)
    value = memo_funcs.total_of_ref(ref, marker)
    assert value == pytest.approx(float(ref.load().sum()))
    assert memo_funcs.total_of_ref(ref.uri, marker) == value  # URI string: same key
    assert memo_funcs.count(marker) == 2

    record = memo_funcs.total_of_ref.record(ref, marker)
    assert record is not None
    assert record["schema"] == RECORD_SCHEMA
    assert record["function"] == "memo_funcs.total_of_ref"
    assert record["key"] == memo_funcs.total_of_ref.key(ref, marker)
    assert record["version"] is None and record["code"].startswith("source:")
    assert record["input_refs"] == [ref.uri]  # the ref as passed, label included
    assert record["inputs"]["ref"]["ref"] == ref.uri
    assert "marker" not in record["inputs"] and record["ignored"] == ["marker"]
    assert record["result"]["codec"] == "json" and record["result"]["type"] == "float"
    assert record["duration"] >= 0 and record["host"] and record["created"].endswith("+00:00")
    assert record["kachery_flows_version"] == kachery_flows.__version__
    signal_record = memo_funcs.signal_ref.record(50, 4, marker)
    assert signal_record is not None
    assert signal_record["result"]["sha1"] == ref.sha1
    assert signal_record["inputs"]["n"] == {
        "type": "int",
        "value": 50,
        "token": signal_record["inputs"]["n"]["token"],
    }
    assert len(signal_record["result"]["array_token"]) > 32
    assert memo_funcs.total_of_ref.record(Ref("cd" * 20), marker) is None


def test_is_cached_and_clear(marker: str) -> None:
    import memo_funcs

    assert not memo_funcs.slow_square.is_cached(2.0, marker)
    memo_funcs.slow_square(2.0, marker)
    memo_funcs.slow_square(3.0, marker)
    assert memo_funcs.slow_square.is_cached(2.0, marker)
    assert memo_funcs.slow_square.clear(2.0, marker) == 1
    assert not memo_funcs.slow_square.is_cached(2.0, marker)
    assert memo_funcs.slow_square.is_cached(3.0, marker)
    memo_funcs.slow_square(2.0, marker)
    assert memo_funcs.count(marker) == 3
    memo_funcs.make_signal(10, 0, marker)
    assert memo_funcs.slow_square.clear() == 2
    assert not memo_funcs.slow_square.is_cached(3.0, marker)
    assert memo_funcs.make_signal.is_cached(10, 0, marker)  # other functions untouched
    assert memo_funcs.slow_square.clear() == 0


def test_exceptions_are_not_cached() -> None:
    attempts: list[int] = []

    @kachery_cached
    def flaky(x: int) -> int:
        attempts.append(x)
        if len(attempts) == 1:
            raise RuntimeError("first time fails")
        return x

    with pytest.raises(RuntimeError):
        flaky(1)
    assert not flaky.is_cached(1)
    assert flaky(1) == 1 and flaky(1) == 1
    assert attempts == [1, 1]


def _lock_is_free(fn: Any, *args: Any) -> bool:
    lock = action_cache(get_default_store()).lock(fn.key(*args))
    if not lock.acquire():
        return False
    lock.release()
    return True


def test_an_error_releases_the_lock_before_it_reaches_the_caller() -> None:
    @kachery_cached
    def fails(x: int) -> int:
        raise ValueError(f"bad {x}")

    @kachery_cached
    def stops(x: int) -> int:
        return next(iter([]))  # StopIteration reaches the caller as it is

    with pytest.raises(ValueError, match="bad 1") as info:
        fails(1)
    assert _lock_is_free(fails, 1)  # the traceback (alive in info) holds no lock
    assert info.traceback[-1].name == "fails"
    with pytest.raises(StopIteration):
        stops(1)
    assert _lock_is_free(stops, 1) and not stops.is_cached(1)


def test_an_async_error_or_cancellation_releases_the_lock() -> None:
    @kachery_cached
    async def fails(x: int) -> int:
        raise ValueError(f"bad {x}")

    @kachery_cached
    async def slow(x: int) -> int:
        await asyncio.sleep(60)
        return x

    async def main() -> None:
        with pytest.raises(ValueError, match="bad 2"):
            await fails(2)
        assert _lock_is_free(fails, 2) and not fails.is_cached(2)
        task = asyncio.ensure_future(slow(3))
        await asyncio.sleep(0.2)
        assert not _lock_is_free(slow, 3)  # held while it computes
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert _lock_is_free(slow, 3) and not slow.is_cached(3)

    asyncio.run(main())


class Analysis:
    def __init__(self, factor: float) -> None:
        self.factor = factor
        self.calls = 0

    @kachery_cached(ignore=["self"])
    def scaled(self, x: int) -> float:
        self.calls += 1
        return x * 2.5


def test_methods_with_ignored_self() -> None:
    a, b = Analysis(1.0), Analysis(2.0)
    assert a.scaled(2) == 5.0 and b.scaled(2) == 5.0
    assert a.calls + b.calls == 1
    assert a.scaled.key(2) == b.scaled.key(2) == Analysis.scaled.key(a, 2)
    assert a.scaled.is_cached(2) and not a.scaled.is_cached(3)
    assert a.scaled.ref(2).codec == "json"
    assert a.scaled.record(2) is not None
    assert a.scaled.clear(2) == 1 and not b.scaled.is_cached(2)
    assert Analysis.scaled.identity.endswith("test_memo_calls.Analysis.scaled")


def test_async_functions() -> None:
    runs: list[int] = []

    @kachery_cached
    async def fetch(x: int) -> dict[str, int]:
        runs.append(x)
        await asyncio.sleep(0.01)
        return {"x": x}

    assert inspect.iscoroutinefunction(fetch)

    async def main() -> tuple[Any, ...]:
        first = await fetch(1)
        together = await asyncio.gather(fetch(2), fetch(2), fetch(1))
        ref = await fetch.ref(2)
        return first, together, ref

    first, together, ref = asyncio.run(main())
    assert first == {"x": 1} and list(together) == [{"x": 2}, {"x": 2}, {"x": 1}]
    assert sorted(runs) == [1, 2]
    assert ref.codec == "json" and fetch.is_cached(2)


def _objects_dir(store: Store) -> Path:
    return store.root / "sha1"


def test_missing_result_is_a_miss_and_is_repaired(marker: str) -> None:
    import memo_funcs

    memo_funcs.make_signal(100, 5, marker)
    ref = memo_funcs.make_signal.ref(100, 5, marker)
    path = get_default_store().object_path(ref)
    path.unlink()
    assert not memo_funcs.make_signal.is_cached(100, 5, marker)
    again = memo_funcs.make_signal(100, 5, marker)
    assert memo_funcs.count(marker) == 2 and path.is_file()
    assert np.array_equal(again, np.random.default_rng(5).standard_normal(100))
    memo_funcs.make_signal(100, 5, marker)
    assert memo_funcs.count(marker) == 2


@pytest.mark.parametrize("damage", ["flip", "truncate", "extend"])
def test_corrupt_results_are_quarantined_and_recomputed(damage: str) -> None:
    produce, log = counting([{"values": list(range(600))}, np.arange(100.0)])  # not inline
    for index in (0, 1):
        produce(index)
        path = get_default_store().object_path(produce.ref(index))
        data = bytearray(path.read_bytes())
        if damage == "flip":
            data[-3] ^= 0x10
        elif damage == "truncate":
            data = data[:-8]
        else:
            data += b"\0" * 8
        os.chmod(path, 0o644)
        path.write_bytes(bytes(data))
        value = produce(index)
        if index == 0:
            assert value == {"values": list(range(600))}
        else:
            assert np.array_equal(value, np.arange(100.0))
    store = get_default_store()
    assert log == [0, 0, 1, 1]
    assert store.verify().ok
    assert len(list(store.quarantine_dir.iterdir())) == 2


def test_large_memory_mapped_results_are_checked_by_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("kachery_flows._results.VERIFY_NPY_LIMIT", 100)
    produce, log = counting([np.arange(100.0)])
    produce(0)
    path = get_default_store().object_path(produce.ref(0))
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x10
    os.chmod(path, 0o644)
    path.write_bytes(bytes(data))
    value = produce(0)
    assert log == [0] and value[-1] != 99.0  # not re-hashed on the hit...
    assert not get_default_store().verify().ok  # ...but verify finds it


def test_garbage_in_the_ref_map_is_a_miss() -> None:
    produce, log = counting([1])
    produce(0)
    cache = action_cache(get_default_store())
    key = produce.key(0)
    assert cache.refs.local is not None
    cache.refs.local.set(cache.ref_name(key), "not an entry")
    assert produce(0) == 1 and log == [0, 0]
    assert cache.get(key) is not None


def test_explicit_store_and_environment_switching(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = Store(tmp_path / "own", fsync=False)
    runs: list[int] = []

    @kachery_cached(store=own)
    def f(x: int) -> int:
        runs.append(x)
        return x

    @kachery_cached
    def g(x: int) -> int:
        runs.append(-x)
        return x

    f(1)
    assert any((own.root / ".kachery-flows" / "refs" / "memo").iterdir())
    g(1)
    monkeypatch.setenv("KACHERY_CLOUD_DIR", str(tmp_path / "other"))
    g(1)
    f(1)
    assert runs == [1, -1, -1]
