"""URI passing: tasks return Refs, consumers on other workers load the data from the
shared store (memory-mapped), so the scheduler and the network carry only URIs; cached
functions behave under distributed (pickled by reference, deterministic keys)."""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

import cloudpickle
import dask
import dask_funcs
import distributed
import numpy as np
import pytest
from dask.base import tokenize

from kachery_flows import Ref, UnsafePickleError, get_default_store, kachery_cached
from kachery_flows._funcid import code_fingerprint
from kachery_flows.dask import load_ref, load_refs

pytestmark = pytest.mark.integration

N = 100_000  # 800 KB arrays


def _scheduler_nbytes(client: distributed.Client, key: Any) -> int:
    def nbytes(dask_scheduler: Any, key: Any) -> int:
        return int(dask_scheduler.tasks[key].nbytes)

    return int(client.run_on_scheduler(nbytes, key=key))


def _incoming_bytes(client: distributed.Client, worker: str) -> int:
    def total(dask_worker: Any) -> int:
        return sum(int(t["total"]) for t in dask_worker.transfer_incoming_log)

    return int(client.run(total, workers=[worker])[worker])


def test_consumer_on_another_worker_loads_a_ref_from_the_store(
    client: distributed.Client, workers: list[str]
) -> None:
    producer, consumer = workers
    before = _incoming_bytes(client, consumer)
    made = client.submit(dask_funcs.produce_ref, N, 1, workers=[producer], pure=False)
    seen = client.submit(dask_funcs.describe, made, workers=[consumer], pure=False).result()
    assert isinstance(made.result(), Ref) and made.result().codec == "npy"
    expected = dask_funcs.produce_value(N, 1)
    assert seen == {"type": "memmap", "writeable": False, "sum": pytest.approx(expected.sum())}
    assert _scheduler_nbytes(client, made.key) < 1000
    assert _incoming_bytes(client, consumer) - before < 1000  # only the Ref moved


def test_by_value_the_array_itself_moves(client: distributed.Client, workers: list[str]) -> None:
    """The contrast that makes the test above meaningful: Dask's default moves the bytes."""
    producer, consumer = workers
    before = _incoming_bytes(client, consumer)
    made = client.submit(dask_funcs.produce_value, N, 1, workers=[producer], pure=False)
    seen = client.submit(dask_funcs.describe, made, workers=[consumer], pure=False).result()
    assert seen["type"] == "ndarray"
    assert _scheduler_nbytes(client, made.key) >= 8 * N
    assert _incoming_bytes(client, consumer) - before >= 8 * N


def test_cached_pipeline_with_submit_passes_only_refs(
    client: distributed.Client, workers: list[str], marker: str
) -> None:
    rec = client.submit(dask_funcs.make_recording, 4, 20_000, 7, marker, workers=[workers[0]])
    hp = client.submit(dask_funcs.highpass, rec, 25, marker, workers=[workers[1]])
    rms = client.submit(dask_funcs.channel_rms, hp, marker, workers=[workers[0]])
    refs = client.gather([rec, hp, rms])
    assert all(isinstance(r, Ref) and r.codec == "npy" for r in refs)
    assert all(_scheduler_nbytes(client, f.key) < 1000 for f in (rec, hp, rms))
    x = np.random.default_rng(7).standard_normal((4, 20_000))
    smooth = np.stack([np.convolve(ch, np.ones(25) / 25, mode="same") for ch in x])
    expected = np.sqrt(np.mean(np.square(x - smooth), axis=1))
    np.testing.assert_allclose(load_ref(refs[2]), expected)
    assert dask_funcs.count(marker) == 3
    # the same calls again, under new keys: every task is a cache hit
    again = client.gather(
        [
            client.submit(f, *args, pure=False)
            for f, args in (
                (dask_funcs.make_recording, (4, 20_000, 7, marker)),
                (dask_funcs.highpass, (refs[0], 25, marker)),
                (dask_funcs.channel_rms, (refs[1], marker)),
            )
        ]
    )
    assert again == refs and dask_funcs.count(marker) == 3


def test_delayed_pipeline_moves_only_uris(client: distributed.Client, marker: str) -> None:
    rec = dask.delayed(dask_funcs.make_recording)(6, 10_000, 3, marker)
    parts = [
        dask.delayed(dask_funcs.channel_rms)(
            dask.delayed(dask_funcs.highpass)(rec, width, marker), marker
        )
        for width in (5, 11, 21)
    ]
    total = dask.delayed(dask_funcs.combine)(parts, marker)
    with distributed.get_task_stream(client) as stream:
        value = total.compute()
    assert isinstance(value, float) and value > 0
    assert len(stream.data) == 8
    assert max(t["nbytes"] for t in stream.data) < 1000  # 480 KB recording never moved
    assert dask_funcs.count(marker) == 8
    assert dask.delayed(dask_funcs.combine)(parts, marker).compute() == value
    assert dask_funcs.count(marker) == 8


def test_cached_functions_travel_by_reference_with_stable_keys(
    client: distributed.Client, workers: list[str], marker: str
) -> None:
    assert pickle.loads(cloudpickle.dumps(dask_funcs.highpass)) is dask_funcs.highpass
    assert len(cloudpickle.dumps(dask_funcs.highpass)) < 200

    def token(fn: Any, *args: Any) -> str:
        return str(tokenize(fn, *args))

    ref = Ref("3" * 40, "x.npy", "npy")
    here = token(dask_funcs.highpass, ref, 5)
    there = client.submit(token, dask_funcs.highpass, ref, 5, workers=[workers[1]]).result()
    assert here == there
    first = dask.delayed(dask_funcs.make_recording, pure=True)(2, 10, 1, marker)
    second = dask.delayed(dask_funcs.make_recording, pure=True)(2, 10, 1, marker)
    assert first.key == second.key
    # two submits of one call share one key, so Dask runs it once; with pure=False the
    # memo cache still computes it only once
    same = [client.submit(dask_funcs.make_recording, 3, 10, 2, marker) for _ in range(2)]
    assert same[0].key == same[1].key
    fresh = [
        client.submit(dask_funcs.make_recording, 3, 10, 2, marker, pure=False) for _ in range(3)
    ]
    assert len({f.key for f in fresh}) == 3
    assert len(set(client.gather(same + fresh))) == 1
    assert dask_funcs.count(marker, "make_recording") == 1


def test_memo_keys_come_from_ref_hashes_and_the_inner_source(marker: str) -> None:
    ref = Ref("4" * 40, "a.npy", "npy")
    relabelled = Ref("4" * 40, "other label")
    assert dask_funcs.highpass.key(ref, 5, marker) == dask_funcs.highpass.key(relabelled, 5, "m")
    inner = dask_funcs.highpass.__wrapped__.__wrapped__
    assert inner.__name__ == "highpass"
    assert dask_funcs.highpass.code == code_fingerprint(inner)


def test_load_refs_resolves_nested_refs_and_passes_data_through() -> None:
    store = get_default_store()
    arr = store.put_npy(np.arange(5))
    doc = store.put_json({"a": [1, 2]})

    @load_refs
    def show(x: Any, items: list[Any], opts: dict[str, Any], uri: str) -> list[Any]:
        return [x, items, opts, uri]

    x, items, opts, uri = show(arr, [doc, (arr, 3)], {"k": doc}, arr.uri)
    assert isinstance(x, np.memmap) and not x.flags.writeable
    assert items[0] == {"a": [1, 2]} and isinstance(items[1], tuple)
    np.testing.assert_array_equal(items[1][0], np.arange(5))
    assert opts == {"k": {"a": [1, 2]}} and uri == arr.uri  # URI strings stay strings
    plain = np.ones(3)
    assert show(plain, [], {}, "")[0] is plain

    @load_refs
    async def total(x: Any) -> float:
        return float(np.sum(x))

    assert asyncio.run(total(arr)) == 10.0


class _Custom:
    def __init__(self, value: int) -> None:
        self.value = value


def test_load_ref_codecs() -> None:
    store = get_default_store()
    assert load_ref(store.put_text("hi")) == "hi"
    assert load_ref(store.put_bytes(b"\x00\x01")) == b"\x00\x01"
    assert load_ref(store.put_pkl({"a": (1, 2.0)})) == {"a": (1, 2.0)}
    custom = store.put_pkl(_Custom(3))
    with pytest.raises(UnsafePickleError):
        load_ref(custom)
    assert load_ref(custom, trusted=True).value == 3
    assert load_ref(Ref(custom.sha1, "custom.pkl"), trusted=True).value == 3  # codec by label


def test_async_cached_function_with_load_refs() -> None:
    @kachery_cached(return_ref=True)
    @load_refs
    async def doubled(x: Any) -> Any:
        return np.asarray(x) * 2

    ref = get_default_store().put_npy(np.arange(4))
    out = asyncio.run(doubled(ref))
    np.testing.assert_array_equal(load_ref(out), np.arange(4) * 2)
