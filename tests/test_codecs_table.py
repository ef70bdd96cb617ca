"""The codec table, the one 'fits npy' rule and the one unpickling choke point."""

from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pytest

from kachery_flows import CorruptObjectError, Ref, Store, UnsafePickleError, codecs


def test_the_table_names_every_codec_with_its_suffix() -> None:
    assert {name: codecs.suffix(name) for name in codecs.CODECS} == {
        "bytes": "",
        "text": ".txt",
        "json": ".json",
        "npy": ".npy",
        "pkl": ".pkl",
    }
    assert sorted(codecs.RESULT_CODECS) == ["bytes", "json", "npy", "pkl"]
    with pytest.raises(ValueError, match="unknown codec 'csv'"):
        codecs.get_codec("csv")


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("a.npy", "npy"),
        ("A.JSON", "json"),
        ("x.txt", "text"),
        ("r.pkl", "pkl"),
        ("data.bin", None),
        ("npy", None),
    ],
)
def test_a_label_suffix_names_its_codec(label: str, codec: str | None) -> None:
    assert codecs.codec_for_label(label) == codec
    assert Ref("0" * 40, label).guess_codec() == codec


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("bytes", b"\x00\x01"),
        ("text", "h\u00e9"),
        ("json", {"b": [1, 2.0], "a": None}),
        ("pkl", {"x": (1, 2)}),
    ],
)
def test_each_writer_matches_its_decoder_and_the_store(
    store: Store, name: str, value: object
) -> None:
    codec = codecs.get_codec(name)
    ref = store.write_object(lambda w: codec.write(w, value), name)
    data = store.load_bytes(ref)
    assert codec.decode is not None and codec.decode(data, "x") == value
    assert store.load(ref, name) == value


def test_npy_writer_is_the_table_entry(store: Store) -> None:
    arr = np.arange(6.0).reshape(2, 3)
    ref = store.write_object(lambda w: codecs.CODECS["npy"].write(w, arr), "npy")
    assert ref == store.put_npy(arr)
    assert codecs.CODECS["npy"].decode is None  # loaded from its file (memory-mappable)


def test_one_rule_for_what_npy_holds(store: Store) -> None:
    assert codecs.npy_problem(np.dtype("f8")) is None
    assert "holds Python objects" in (codecs.npy_problem(np.dtype(object)) or "")
    assert codecs.fits_npy(np.zeros(3)) and codecs.fits_npy(np.zeros(2, dtype="U3"))
    assert not codecs.fits_npy(np.array([None, 1], dtype=object))
    assert not codecs.fits_npy(np.ma.masked_array([1, 2]))  # a subclass: pickled instead
    assert not codecs.fits_npy([1, 2])
    with pytest.raises(TypeError, match="holds Python objects"):
        store.put_npy(np.array([{}], dtype=object))


def test_unpickle_applies_the_trust_rule_it_is_given() -> None:
    data = pickle.dumps({1: 2}, protocol=4)
    sha1 = hashlib.sha1(data).hexdigest()
    assert codecs.unpickle(data, sha1, "x", lambda s: s == sha1) == {1: 2}
    with pytest.raises(UnsafePickleError, match="did not pickle it"):
        codecs.unpickle(data, sha1, "x", lambda s: False)
    with pytest.raises(CorruptObjectError, match="do not hash"):
        codecs.unpickle(data, "0" * 40, "x", lambda s: True)
    assert codecs.unpickle(data, "0" * 40, "x", False) == {1: 2}  # safe decoder, no hash check
