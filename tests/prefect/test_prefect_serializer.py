"""KacherySerializer without a server: what records hold, round trips, failures, gc."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from prefect._internal.result_records import ResultRecord, ResultRecordMetadata
from prefect.serializers import Serializer

import kachery_flows
from kachery_flows import (
    ObjectNotFoundError,
    Ref,
    Store,
    UnsafePickleError,
    get_default_store,
    parse_uri,
)
from kachery_flows.garbage import collect_garbage
from kachery_flows.memoize import kachery_cached
from kachery_flows.prefect import KacherySerializer

SER = KacherySerializer()


def test_dumps_returns_the_uri_of_the_stored_object() -> None:
    a = np.arange(12.0).reshape(3, 4)
    blob = SER.dumps(a)
    ref = parse_uri(blob.decode("ascii"))
    assert blob == ref.uri.encode() and ref.label == "result.npy"
    # byte-compatible with store_npy: the same object, the same URI hash
    assert ref.sha1 == parse_uri(kachery_flows.store_npy(a)).sha1
    loaded = SER.loads(blob)
    np.testing.assert_array_equal(loaded, a)
    # writable like the array the task returned on its first run, copy-on-write on disk
    assert type(loaded) is np.ndarray and loaded.flags.writeable
    assert isinstance(loaded.base, np.memmap) and loaded.base.mode == "c"  # lazy, private
    loaded[0, 0] = 99.0
    np.testing.assert_array_equal(SER.loads(blob), a)  # the stored object never changes


@pytest.mark.parametrize(
    ("value", "suffix"),
    [
        ({"a": [1, 2.5, None], "b": "x"}, ".json"),
        (b"\x00raw bytes", ""),
        ((1, 2.0, "tuple"), ".pkl"),
        ({"b": 1, "a": 2}, ".pkl"),  # unsorted keys: canonical JSON would reorder them
        (np.float64(2.5), ".pkl"),
        ({3, 1, 2}, ".pkl"),
        ([Ref("a" * 40, "x.npy")], ".pkl"),
    ],
)
def test_values_round_trip_exactly(value: object, suffix: str) -> None:
    blob = SER.dumps(value)
    assert parse_uri(blob.decode()).label == "result" + suffix
    loaded = SER.loads(blob)
    assert loaded == value and type(loaded) is type(value)
    if isinstance(value, dict):
        assert list(loaded) == list(value)


def test_a_ref_result_is_written_into_the_record() -> None:
    stored = get_default_store().put_npy(np.zeros(3))  # codec npy, no label
    before = set(get_default_store().iter_hashes())
    blob = SER.dumps(stored)
    assert set(get_default_store().iter_hashes()) == before  # nothing new stored
    assert len(blob) < 200 and stored.sha1.encode() in blob
    loaded = SER.loads(blob)
    assert loaded == stored and loaded.codec == "npy" and loaded.label is None
    np.testing.assert_array_equal(loaded.load(), np.zeros(3))
    zoned = Ref(stored.sha1, "x.npy", "npy", zone="lab")
    assert SER.loads(SER.dumps(zoned)).zone == "lab"


def test_a_prefect_record_is_tiny_and_round_trips() -> None:
    big = np.ones((512, 1024))  # 4 MiB
    record = ResultRecord(metadata=ResultRecordMetadata(serializer=SER), result=big)
    data = record.serialize()
    assert len(data) < 1024 and b'"type":"kachery"' in data
    np.testing.assert_array_equal(ResultRecord.deserialize(data).result, big)
    assert type(Serializer(type="kachery")) is KacherySerializer


def test_missing_objects_raise_so_prefect_recomputes() -> None:
    store = get_default_store()
    blob = SER.dumps({"k": 1})
    store.object_path(blob.decode()).unlink()
    with pytest.raises(ObjectNotFoundError, match="missing or corrupt"):
        SER.loads(blob)
    ref_blob = SER.dumps(store.put_text("gone"))
    store.object_path(store.store_text("gone")).unlink()
    with pytest.raises(ObjectNotFoundError, match="Ref"):
        SER.loads(ref_blob)


def test_a_corrupt_object_is_quarantined_and_reported_missing() -> None:
    store = get_default_store()
    blob = SER.dumps([1, 2, 3])
    path = store.object_path(blob.decode())
    path.write_bytes(b"[1,2,4]")
    with pytest.raises(ObjectNotFoundError):
        SER.loads(blob)
    assert not path.exists() and any(store.quarantine_dir.iterdir())
    assert SER.loads(SER.dumps([1, 2, 3])) == [1, 2, 3]  # a recompute puts it back


def test_results_travel_through_the_zone(tmp_path: Path) -> None:
    zone = f"file://{tmp_path}/zone"
    writer = KacherySerializer(store=Store(tmp_path / "machine-a", zone=zone))
    reader = KacherySerializer(store=Store(tmp_path / "machine-b", zone=zone))
    a = np.arange(1000.0)
    blob = writer.dumps(a)
    assert reader.get_store().root != writer.get_store().root
    np.testing.assert_array_equal(reader.loads(blob), a)
    assert reader.get_store().object_path(blob.decode()).exists()
    with pytest.raises(ObjectNotFoundError):
        KacherySerializer(store=Store(tmp_path / "machine-c")).loads(blob)


def test_prefect_results_are_never_garbage_collected(store: Store) -> None:
    @kachery_cached(store=store)
    def memo(n: int) -> list[int]:
        return list(range(n))

    entry_ref = memo.ref(5)
    control = memo.ref(6)
    memo.clear()  # the memo result is unreachable now: gc may take it ...
    ser = KacherySerializer(store=Store(store.root))
    prefect_blob = ser.dumps(list(range(7)))
    shared_blob = ser.dumps(list(range(5)))  # ... unless Prefect stored the same bytes
    assert parse_uri(shared_blob.decode()).sha1 == entry_ref.sha1
    report = collect_garbage(store, older_than_days=0)
    assert entry_ref.sha1 not in report.deleted_objects
    assert control.sha1 in report.deleted_objects  # gc did collect the unshared memo result
    assert ser.loads(prefect_blob) == list(range(7))
    assert ser.loads(shared_blob) == list(range(5))


class Point:
    """A result only cloudpickle can store (a class, not JSON or an array)."""

    def __init__(self, x: float) -> None:
        self.x = x


def test_pickles_from_another_store_are_not_unpickled_without_trust(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zone = f"file://{tmp_path}/zone"
    writer = KacherySerializer(store=Store(tmp_path / "machine-a", zone=zone))
    reader = KacherySerializer(store=Store(tmp_path / "machine-b", zone=zone))
    blob = writer.dumps(Point(2.5))
    assert blob.decode().endswith(".pkl")
    assert writer.loads(blob).x == 2.5  # the store that pickled it trusts it
    with pytest.raises(UnsafePickleError, match="KACHERY_FLOWS_TRUST_ZONE_PICKLES"):
        reader.loads(blob)
    assert not reader.get_store().object_path(blob.decode()).exists()  # nothing fetched
    np.testing.assert_array_equal(reader.loads(writer.dumps(np.ones(3))), np.ones(3))

    monkeypatch.setenv("KACHERY_FLOWS_TRUST_ZONE_PICKLES", "1")
    trusting = KacherySerializer(store=Store(tmp_path / "machine-c", zone=zone))
    assert trusting.loads(blob).x == 2.5


def test_gc_keeps_trust_in_prefect_pickles(store: Store) -> None:
    ser = KacherySerializer(store=Store(store.root))
    blob = ser.dumps(Point(1.0))
    collect_garbage(store, older_than_days=0)
    assert ser.loads(blob).x == 1.0
