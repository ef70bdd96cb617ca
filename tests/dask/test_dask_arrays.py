"""to_kachery / from_kachery on a real LocalCluster: exact round trips, chunks written by
the workers, only URIs through the scheduler, deduplication, identical graphs on every
client, memory-mapped chunks on the workers."""

from __future__ import annotations

import dask.array as da
import dask_funcs
import distributed
import numpy as np
import pytest

from kachery_flows import ManifestError, Store, get_default_store
from kachery_flows.dask import from_kachery, read_manifest, to_kachery
from kachery_flows.garbage import collect_garbage

pytestmark = pytest.mark.integration


def _structured() -> np.ndarray:
    dtype = np.dtype([("t", "<f8"), ("ch", "<i2"), ("flags", "u1", (3,))])
    arr = np.zeros(50, dtype=dtype)
    arr["t"] = np.linspace(0, 1, 50)
    arr["ch"] = np.arange(50) % 7
    arr["flags"] = np.arange(150).reshape(50, 3) % 5
    return arr


ARRAYS = {
    "float64-2d-irregular": lambda: da.from_array(
        np.random.default_rng(1).standard_normal((37, 23)), chunks=((10, 20, 7), (5, 18))
    ),
    "int16-3d": lambda: (
        da.arange(4 * 6 * 5, dtype="i2", chunks=40).reshape(4, 6, 5).rechunk((3, 4, 5))
    ),
    "big-endian-uint32": lambda: da.from_array(np.arange(30, dtype=">u4"), chunks=7),
    "bool": lambda: da.from_array(np.arange(40) % 3 == 0, chunks=9),
    "complex128": lambda: da.from_array(np.arange(12) * (1 + 2j), chunks=5),
    "datetime64": lambda: da.from_array(
        np.arange("2024-01-01", "2024-02-01", dtype="M8[D]"), chunks=10
    ),
    "unicode": lambda: da.from_array(np.array(["alpha", "β", "", "delta"] * 3), chunks=5),
    "structured": lambda: da.from_array(_structured(), chunks=16),
    "fortran-ordered": lambda: da.from_array(
        np.asfortranarray(np.arange(60.0).reshape(6, 10)), chunks=(4, 4)
    ),
    "zero-d": lambda: da.from_array(np.array(2.5)),
    "empty-axis": lambda: da.zeros((0, 4), chunks=(1, 2)),
    "unknown-chunk-sizes": lambda: (lambda x: x[x % 3 != 1])(da.arange(50, chunks=8)),
}


@pytest.mark.parametrize("make", ARRAYS.values(), ids=ARRAYS.keys())
def test_round_trip_is_exact(client: distributed.Client, make: object) -> None:
    arr = make()  # type: ignore[operator]
    expected = arr.compute()
    ref = to_kachery(arr)
    back = from_kachery(ref)
    assert back.dtype == expected.dtype and back.shape == expected.shape
    if not any(np.isnan(c) for axis in arr.chunks for c in axis):
        assert back.chunks == arr.chunks
    result = back.compute()
    assert result.dtype == expected.dtype and result.shape == expected.shape
    np.testing.assert_array_equal(result, expected)


def test_unknown_chunk_sizes_are_recorded_as_they_turned_out(client: distributed.Client) -> None:
    x = da.arange(50, chunks=8)
    kept = x[x % 3 != 1]
    assert np.isnan(kept.chunks[0][0])
    back = from_kachery(to_kachery(kept))
    sizes = [int((np.arange(s, min(s + 8, 50)) % 3 != 1).sum()) for s in range(0, 50, 8)]
    assert back.chunks == (tuple(sizes),)


def test_chunks_are_stored_by_the_workers_and_only_uris_reach_the_scheduler(
    client: distributed.Client,
) -> None:
    # 16 chunks of 200 KB
    arr = da.random.default_rng(3).standard_normal((16 * 25_000,), chunks=25_000)
    with distributed.get_task_stream(client) as stream:
        ref = to_kachery(arr, label="noise")
    ours = [
        t
        for t in stream.data
        if str(t["key"]).startswith("('to-kachery") or str(t["key"]).startswith("to-kachery")
    ]
    chunk_tasks = [t for t in ours if "chunk" in str(t["key"])]
    assert len(chunk_tasks) == 16 and len(ours) == 17
    assert {t["worker"] for t in chunk_tasks} == set(client.scheduler_info()["workers"])
    assert max(t["nbytes"] for t in ours) < 1000  # a URI and a shape per chunk; the Ref
    generated = [t for t in stream.data if t not in ours]
    assert max(t["nbytes"] for t in generated) >= 200_000  # the chunks stayed on the workers
    assert ref.label == "noise" and ref.codec == "json"
    manifest = read_manifest(ref)
    assert len(manifest.chunk_refs) == 16
    store = get_default_store()
    assert all(store.exists(r) for r in manifest.chunk_refs)


def test_storing_the_same_array_again_writes_nothing_new(client: distributed.Client) -> None:
    arr = da.random.default_rng(4).standard_normal((300, 40), chunks=(100, 20))
    store = get_default_store()
    first = to_kachery(arr, label="first")
    objects = set(store.iter_hashes())
    assert len(objects) == 6 + 1 + 1  # chunks, manifest, its provenance record
    again = to_kachery(arr, label="second label")
    same_values = to_kachery(da.from_array(arr.compute(), chunks=(100, 20)))
    assert again == first == same_values  # equal Refs: the same sha1, labels aside
    assert again.label == "second label"
    assert set(store.iter_hashes()) == objects
    rechunked = to_kachery(arr.rechunk((150, 40)))
    assert rechunked != first and len(set(store.iter_hashes())) == len(objects) + 2 + 1 + 1


def test_chunks_and_manifest_are_user_objects(client: distributed.Client) -> None:
    ref = to_kachery(da.arange(100, chunks=30))
    store = get_default_store()
    manifest = read_manifest(ref)
    stored = [ref, *manifest.chunk_refs]
    assert not any(store.cache_mark_path(r.sha1).exists() for r in stored)
    collect_garbage(store, older_than_days=0)
    assert all(store.exists(r) for r in stored)


def test_workers_memory_map_the_chunks(client: distributed.Client) -> None:
    arr = da.random.default_rng(5).standard_normal((40, 30), chunks=(10, 15))
    back = from_kachery(to_kachery(arr))
    flags = back.map_blocks(
        dask_funcs.block_flags, dtype=bool, chunks=(1, 2), meta=np.empty((0, 0), bool)
    ).compute()
    assert flags.shape == (4, 4)
    assert flags[:, 0::2].all() and not flags[:, 1::2].any()  # memory-mapped, read-only
    np.testing.assert_array_equal(back.compute(), arr.compute())


def test_every_client_builds_the_same_graph(
    client: distributed.Client, dask_cluster: distributed.LocalCluster, workers: list[str]
) -> None:
    ref = to_kachery(da.arange(1000, chunks=100).reshape(10, 100), label="shared")
    mine = from_kachery(ref)
    with distributed.Client(dask_cluster, set_as_default=False) as other:
        theirs = from_kachery(ref.uri)
        computed = other.compute(theirs).result()
        np.testing.assert_array_equal(computed, np.arange(1000).reshape(10, 100))
        # built again in a worker process (another interpreter, another store object)
        name, keys = other.submit(dask_funcs.graph_of, ref.uri, workers=workers[1]).result()
    assert mine.name == theirs.name == name == f"from-kachery-{ref.sha1}"
    assert sorted(mine.__dask_graph__().keys()) == sorted(theirs.__dask_graph__().keys()) == keys
    assert mine.__dask_tokenize__() == theirs.__dask_tokenize__()


def test_to_kachery_runs_without_a_distributed_client() -> None:
    arr = da.random.default_rng(6).standard_normal((50, 8), chunks=(20, 8))
    for scheduler in ("threads", "sync"):
        import dask

        with dask.config.set(scheduler=scheduler):
            ref = to_kachery(arr)
            np.testing.assert_array_equal(from_kachery(ref).compute(), arr.compute())


def test_explicit_store_is_used_by_the_workers(
    client: distributed.Client, tmp_path: object
) -> None:
    from pathlib import Path

    store = Store(Path(str(tmp_path)) / "explicit", fsync=False)
    arr = da.arange(60, chunks=25)
    ref = to_kachery(arr, store=store)
    assert store.exists(ref) and not get_default_store().exists(ref)
    np.testing.assert_array_equal(from_kachery(ref, store=store).compute(), np.arange(60))


def test_object_dtype_is_refused_before_anything_runs(client: distributed.Client) -> None:
    arr = da.from_array(np.array(["a", 1, None], dtype=object), chunks=2)
    with pytest.raises(TypeError, match=r"astype"):
        to_kachery(arr)
    assert list(get_default_store().iter_hashes()) == []


def test_chunks_that_contradict_the_array_are_refused(client: distributed.Client) -> None:
    x = da.arange(20, chunks=5)
    wrong_dtype = x.map_blocks(lambda b: b.astype("i1"), dtype="f8")
    with pytest.raises(ManifestError, match=r"dtype int8.*declares float64"):
        to_kachery(wrong_dtype)
    wrong_shape = x.map_blocks(lambda b: b[:3], dtype=x.dtype)
    with pytest.raises(ManifestError, match=r"shape \(3,\).*declare \(5,\)"):
        to_kachery(wrong_shape)
    masked = da.ma.masked_greater(x, 10)
    with pytest.raises(ManifestError, match=r"MaskedArray"):
        to_kachery(masked)


def test_a_chunk_that_contradicts_its_manifest_fails_on_the_worker(
    client: distributed.Client,
) -> None:
    store = get_default_store()
    good = read_manifest(to_kachery(da.arange(10.0, chunks=5)))
    wrong = store.put_npy(np.arange(5, dtype="f4"))  # float32 where float64 is promised
    manifest = good.to_json()
    manifest["chunk_uris"][1] = wrong.uri
    ref = store.put_json(manifest)
    arr = from_kachery(ref)
    np.testing.assert_array_equal(arr[:5].compute(), np.arange(5.0))
    with pytest.raises(ManifestError, match=r"float32.*float64") as info:
        arr.compute()
    assert info.value.uri == ref.uri  # kept on the way from the worker
