from __future__ import annotations

import hashlib
import io
import os
import pickle
from collections import namedtuple
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from kachery_flows import DecodeError, Ref, Store, UnsafePickleError
from kachery_flows.codecs import decode_json, decode_pkl, encode_json, encode_pkl


def _np_save_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


ARRAYS = [
    np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int16),
    np.arange(10.0).reshape(2, 5).T,  # F-contiguous
    np.arange(24).reshape(2, 3, 4)[:, ::2, 1:],  # strided view
    np.arange(40, dtype=np.float32).reshape(8, 5)[::-1],  # negative strides
    np.zeros((0, 3)),
    np.array(3.5),
    np.zeros(5, dtype=[("x", "<i4"), ("y", "<f8", (2,))]),
    np.array(["ab", "cde"]),
    np.arange(5).astype("M8[s]"),
    np.array([1 + 2j, 3 - 4j]),
    np.asfortranarray(np.ones((3, 4), dtype=">f4")),
    np.array([True, False]),
    np.arange(10**6, dtype=np.float64).reshape(1000, 1000)[:, ::3],
]


@pytest.mark.parametrize("arr", ARRAYS, ids=lambda a: f"{a.dtype}{a.shape}")
def test_npy_bytes_identical_to_np_save(store: Store, arr: np.ndarray) -> None:
    expected = _np_save_bytes(arr)
    ref = store.put_npy(arr)
    assert ref.sha1 == hashlib.sha1(expected).hexdigest()
    assert Path(store.load_file(ref)).read_bytes() == expected
    loaded = store.load_npy(ref)
    assert loaded.dtype == arr.dtype and loaded.shape == arr.shape
    np.testing.assert_array_equal(loaded, arr)


def test_npy_rejects_object_arrays(store: Store) -> None:
    with pytest.raises(TypeError, match="pickle"):
        store.put_npy(np.array([{"a": 1}], dtype=object))
    assert list(store.iter_hashes()) == []
    assert not any(store.iter_temp_files())


def test_npy_mmap_is_read_only(store: Store) -> None:
    ref = store.put_npy(np.arange(100.0))
    arr = store.load_npy(ref, mmap_mode="r")
    assert isinstance(arr, np.memmap)
    with pytest.raises(ValueError):
        arr[0] = 1.0
    with pytest.raises(ValueError, match="immutable"):
        store.load_npy(ref, mmap_mode="r+")


def test_npy_loader_refuses_pickled_npy(store: Store) -> None:
    buf = io.BytesIO()
    np.save(buf, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    ref = store.put_bytes(buf.getvalue())
    with pytest.raises(DecodeError):
        store.load_npy(ref)


def test_json_vectors() -> None:
    assert encode_json({"example": "dict"}) == b'{"example":"dict"}'
    assert hashlib.sha1(encode_json({"example": "dict"})).hexdigest() == (
        "d0d9555e376ff13a08c6d56072808e27ca32d54a"
    )
    assert encode_json({"b": 1.0, "a": [1, 2.5, None, True]}) == (
        b'{"a":[1,2.5,null,true],"b":1.0}'
    )
    assert encode_json({"t": "h\u00e9\U0001f600"}) == b'{"t":"h\\u00e9\\ud83d\\ude00"}'
    assert encode_json({1: (1, 2)}) == b'{"1":[1,2]}'
    assert encode_json([np.float64(0.1), -0.0, 1e22, 1e-7]) == b"[0.1,-0.0,1e+22,1e-07]"


def test_json_namedtuple_is_an_object_like_simplejson() -> None:
    Point = namedtuple("Point", ["y", "x"])
    assert encode_json({"p": Point(1, 2)}) == b'{"p":{"x":2,"y":1}}'


def test_json_refs_become_uris() -> None:
    h = "a" * 40
    assert encode_json({"r": Ref(h, "x.npy")}) == f'{{"r":"sha1://{h}?label=x.npy"}}'.encode()


@pytest.mark.parametrize(
    "bad", [float("nan"), float("inf"), Decimal("1.5"), np.int64(3), {1, 2}, object()]
)
def test_json_rejects_clearly(bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        encode_json({"x": bad})


def test_json_decode_errors_are_typed() -> None:
    with pytest.raises(DecodeError):
        decode_json(b"{not json", "x")
    with pytest.raises(DecodeError):
        decode_json(b"[" * 100000 + b"]" * 100000, "deep")
    with pytest.raises(DecodeError):
        decode_json(b"1" * 100000, "huge int")


def test_pkl_protocol_4_bytes() -> None:
    obj = {"a": [1, 2.5, "x"], "b": (None, True)}
    assert encode_pkl(obj) == pickle.dumps(obj, protocol=4)


def test_pkl_safe_loads_numpy_pickles() -> None:
    value = {
        "a": np.arange(6, dtype=np.int16).reshape(2, 3),
        "s": np.float64(2.5),
        "b": np.bool_(True),
        "dt": np.dtype("f4"),
        "rec": np.zeros(2, dtype=[("x", "i4"), ("y", "f8")]),
        "misc": [range(3), 1 + 2j, frozenset({1}), {2}, slice(1, 2), b"xy"],
    }
    loaded = decode_pkl(encode_pkl(value), "x")
    np.testing.assert_array_equal(loaded["a"], value["a"])
    assert loaded["s"] == 2.5 and loaded["dt"] == np.dtype("f4")
    assert loaded["misc"] == value["misc"]


def test_pkl_numpy1_pickle_loads() -> None:
    # numpy 1.x pickles (e.g. kachery-cloud's README example) reference
    # numpy.core.multiarray; they must load under numpy 2 through the allow-list.
    arr = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int16)
    numpy1 = pickle.dumps({"example": arr}, protocol=2).replace(
        b"numpy._core.multiarray", b"numpy.core.multiarray"
    )
    assert b"numpy.core.multiarray" in numpy1
    loaded = decode_pkl(numpy1, "numpy-1 pickle")
    np.testing.assert_array_equal(loaded["example"], arr)


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (Path.write_text, (Path(self.marker), "pwned"))  # type: ignore[return-value]


def test_malicious_pickle_is_not_executed(store: Store, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    payload = pickle.dumps(_Evil(str(marker)), protocol=4)
    ref = store.put_bytes(payload)
    with pytest.raises(UnsafePickleError, match="trusted=True"):
        store.load_pkl(ref)
    assert not marker.exists()
    for bad in (
        b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.",
        b"cbuiltins\neval\n(S'1'\ntR.",
        b"cbuiltins\ngetattr\n(cbuiltins\nobject\nS'x'\ntR.",
    ):
        with pytest.raises(UnsafePickleError):
            decode_pkl(bad, "hostile")
    assert not marker.exists()
    store.load_pkl(ref, trusted=True)
    assert marker.read_text() == "pwned"


def test_pkl_garbage_is_decode_error() -> None:
    with pytest.raises(DecodeError):
        decode_pkl(os.urandom(64), "noise")
