"""The array manifest: its exact layout, and strict validation of malformed manifests
(typed errors before any chunk is read). Runs on Dask's local scheduler."""

from __future__ import annotations

import copy
import hashlib
import io
from collections.abc import Callable
from typing import Any

import dask
import dask.array as da
import numpy as np
import pytest

from kachery_flows import (
    ManifestError,
    ObjectNotFoundError,
    Ref,
    get_default_store,
    load_json,
    store_json,
    store_npy,
)
from kachery_flows.dask import MANIFEST_SCHEMA, ArrayManifest, from_kachery, to_kachery

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _local_scheduler() -> Any:
    with dask.config.set(scheduler="threads"):
        yield


def _npy_sha1(block: np.ndarray) -> str:
    buf = io.BytesIO()
    np.save(buf, block, allow_pickle=False)
    return hashlib.sha1(buf.getvalue()).hexdigest()


def test_manifest_layout() -> None:
    values = np.arange(7 * 5, dtype="<i4").reshape(7, 5)
    arr = da.from_array(values, chunks=(3, 2))
    ref = to_kachery(arr)
    assert ref.label == "dask-array.json" and ref.codec == "json"
    manifest = load_json(ref)
    assert manifest == {
        "schema": MANIFEST_SCHEMA,
        "shape": [7, 5],
        "dtype": "<i4",
        "chunks": [[3, 3, 1], [2, 2, 1]],
        "chunk_uris": [
            f"sha1://{_npy_sha1(values[i : i + 3, j : j + 2])}"  # C block order, np.save bytes
            for i in (0, 3, 6)
            for j in (0, 2, 4)
        ],
    }


def test_structured_dtype_is_described_as_npy_does() -> None:
    dtype = np.dtype([("a", "<f8"), ("b", "<i2", (2,))])
    ref = to_kachery(da.from_array(np.zeros(4, dtype), chunks=2))
    assert load_json(ref)["dtype"] == [["a", "<f8"], ["b", "<i2", [2]]]
    assert from_kachery(ref).dtype == dtype


def _valid() -> tuple[dict[str, Any], np.ndarray]:
    values = np.arange(12.0).reshape(3, 4)
    ref = to_kachery(da.from_array(values, chunks=(2, 4)))
    return load_json(ref), values


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(m: dict[str, Any]) -> None:
        m[key] = value

    return edit


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    def edit(m: dict[str, Any]) -> None:
        del m[key]

    return edit


def _uri(index: int, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(m: dict[str, Any]) -> None:
        m["chunk_uris"][index] = value

    return edit


MALFORMED: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "wrong schema": (_set("schema", "something-else"), r"schema is 'something-else'"),
    "no schema": (_drop("schema"), r"schema is None"),
    "missing key": (_drop("chunks"), r"keys missing: \['chunks'\]"),
    "extra key": (_set("order", "F"), r"unexpected keys: \['order'\]"),
    "negative size": (_set("shape", [-3, 4]), r"shape must be a list of non-negative"),
    "float size": (_set("shape", [3.0, 4]), r"shape must be a list of non-negative"),
    "bool size": (_set("shape", [True, 4]), r"shape must be a list of non-negative"),
    "shape not a list": (_set("shape", "3x4"), r"shape must be a list"),
    "chunks per axis": (_set("chunks", [[2, 1]]), r"chunks must be a list of 2 lists"),
    "chunks do not add up": (_set("chunks", [[2, 2], [4]]), r"axis 0 \[2, 2\] do not add up"),
    "empty chunks": (_set("chunks", [[], [4]]), r"axis 0 \[\] do not add up"),
    "object dtype": (_set("dtype", "|O"), r"holds Python objects"),
    "unknown dtype": (_set("dtype", "<q9"), r"not a numpy .npy dtype"),
    "dtype not a descr": (_set("dtype", {"kind": "f"}), r"not a numpy .npy dtype"),
    "too few uris": (_set("chunk_uris", ["sha1://" + "0" * 40]), r"must list 2 URIs"),
    "uris not a list": (_set("chunk_uris", "sha1://x"), r"per block\), found str"),
    "invalid uri": (_uri(1, "sha1://" + "A" * 40), r"chunk_uris\[1\].*lowercase"),
    "path traversal": (_uri(0, "sha1://../../etc/passwd"), r"chunk_uris\[0\]"),
    "uri not a string": (_uri(0, 17), r"chunk_uris\[0\] is int"),
}


@pytest.mark.parametrize("case", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_manifests_are_refused(
    case: tuple[Callable[[dict[str, Any]], None], str],
) -> None:
    edit, message = case
    manifest, _ = _valid()
    broken = copy.deepcopy(manifest)
    edit(broken)
    uri = store_json(broken)
    with pytest.raises(ManifestError, match=message) as info:
        from_kachery(uri)
    assert info.value.uri == uri and uri in str(info.value)
    assert isinstance(info.value, ValueError)


def test_a_newer_schema_asks_for_an_upgrade() -> None:
    manifest, _ = _valid()
    uri = store_json({**manifest, "schema": "kachery-flows-dask-array-2"})
    with pytest.raises(ManifestError, match=r"upgrade kachery-flows"):
        from_kachery(uri)


def test_objects_that_are_not_manifests() -> None:
    with pytest.raises(ManifestError, match=r"expected a JSON object, found list"):
        from_kachery(store_json([1, 2, 3]))
    with pytest.raises(ManifestError, match=r"not JSON.*load_npy"):
        from_kachery(store_npy(np.arange(3)))
    with pytest.raises(ObjectNotFoundError):
        from_kachery(Ref("0" * 40))


def test_chunks_that_contradict_the_manifest() -> None:
    manifest, values = _valid()
    short = store_npy(np.arange(4.0))  # 1-d where a (1, 4) block is promised
    arr = from_kachery(store_json({**manifest, "chunk_uris": [manifest["chunk_uris"][0], short]}))
    np.testing.assert_array_equal(arr[:2].compute(), values[:2])
    with pytest.raises(ManifestError, match=r"shape \(4,\).*manifest says \(1, 4\)"):
        arr.compute()
    absent = "sha1://" + "1" * 40
    missing = store_json({**manifest, "chunk_uris": [manifest["chunk_uris"][0], absent]})
    with pytest.raises(ObjectNotFoundError, match="1" * 40):
        from_kachery(missing).compute()


def test_manifest_round_trips_through_its_dataclass() -> None:
    manifest, _ = _valid()
    parsed = ArrayManifest.from_json(manifest, "sha1://" + "2" * 40)
    assert parsed.numblocks == (2, 1) and parsed.shape == (3, 4)
    assert parsed.to_json() == manifest
    assert [index for index, _, _ in parsed.blocks()] == [(0, 0), (1, 0)]
    assert get_default_store().exists(parsed.chunk_refs[1])
