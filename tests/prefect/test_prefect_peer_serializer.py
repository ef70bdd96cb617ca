"""Prefect's own serializer and result-record cases, run against KacherySerializer and
KacheryStorage (no server). The cases follow Prefect's suite (PrefectHQ/prefect
``tests/test_serializers.py``, ``tests/results/test_result_record.py``,
``tests/results/test_result_store.py``); docs/prefect.md tabulates where kachery differs on
purpose. Also the three failures seen when the suite was first tried this way."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prefect._internal.result_records import ResultRecord, ResultRecordMetadata
from prefect.filesystems import LocalFileSystem
from prefect.results import ResultStore
from prefect.serializers import Serializer
from prefect.testing.utilities import exceptions_equal
from prefect.types._datetime import now
from pydantic import BaseModel, ValidationError, field_validator

from kachery_flows import DecodeError, Store, parse_uri
from kachery_flows.memoize import kachery_cached
from kachery_flows.prefect import KacherySerializer, KacheryStorage

UUID = uuid.UUID("9b2c3f0e-5d4a-4c1b-8e7f-0a1b2c3d4e5f")


class Model(BaseModel):
    x: int
    y: uuid.UUID


@dataclass
class Pair:
    x: int
    y: str


@dataclass
class PairBytes:
    x: int
    y: bytes


CODE = "def dog(p: str) -> int:\n    print('woof!' + p)  # !@#$%^&*()_+-\n"

# Prefect's SERIALIZER_TEST_CASES: values every serializer must round-trip
VALUES = [
    1,
    "test",
    {"foo": "bar"},
    ["x", "y"],
    UUID,
    Model(x=1, y=UUID),
    Pair(1, "test"),
    b"test string",
    "test string".encode("ascii"),
    PairBytes(1, b"test"),
    # JSONSerializer's complex-bytes cases
    CODE.encode(),
    CODE.encode("latin_1"),
    [CODE.encode()],
    {"key": CODE.encode("ascii")},
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_values_round_trip(value: Any) -> None:
    ser = KacherySerializer()
    loaded = ser.loads(ser.dumps(value))
    assert loaded == value and type(loaded) is type(value)


@pytest.mark.parametrize("exc", [Exception("foo"), ValueError("bar")], ids=repr)
def test_exceptions_round_trip(exc: BaseException) -> None:
    ser = KacherySerializer()
    assert exceptions_equal(ser.loads(ser.dumps(exc)), exc)


def test_serializer_forbids_extra_fields() -> None:
    with pytest.raises(ValidationError):
        KacherySerializer(x="test")  # type: ignore[call-arg]


def test_serializer_from_dict_object_and_type_string() -> None:
    class Holder(BaseModel):
        serializer: Serializer

        @field_validator("serializer", mode="before")
        @classmethod
        def _by_name(cls, value: Any) -> Any:
            return {"type": value} if isinstance(value, str) else value

    for spec in ({"type": "kachery"}, KacherySerializer(), "kachery"):
        assert type(Holder(serializer=spec).serializer) is KacherySerializer
    assert type(Serializer(type="kachery")) is KacherySerializer


def test_record_with_full_data_and_with_result_only() -> None:
    ser = KacherySerializer()
    record = ResultRecord(
        result="The results are in...",
        metadata=ResultRecordMetadata(storage_key="k", serializer=ser),
    )
    assert ResultRecord.deserialize(record.serialize()).result == "The results are in..."
    raw = ser.dumps("The results are in...")
    with pytest.raises(ValidationError):
        ResultRecord.deserialize(raw)
    assert ResultRecord.deserialize(raw, backup_serializer=ser).result == ("The results are in...")


def test_invalid_kachery_serializer_fields_surface() -> None:
    with pytest.raises(ValidationError):
        ResultRecordMetadata.model_validate(
            {"storage_key": "k", "serializer": {"type": "kachery", "bogus": 1}}
        )


@pytest.mark.parametrize("storage", ["local", "kachery"])
def test_result_store_write_read_exists(tmp_path: Path, storage: str) -> None:
    block: Any = (
        LocalFileSystem(basepath=str(tmp_path / "results"))
        if storage == "local"
        else KacheryStorage(root=str(tmp_path / "store"))
    )
    store = ResultStore(result_storage=block, serializer=KacherySerializer())
    store.write(key="test", obj={"a": np.arange(3.0).tolist()})
    assert store.exists("test") and not store.exists("nonexistent")
    assert ResultStore(result_storage=block).read("test").result == {"a": [0.0, 1.0, 2.0]}


@pytest.mark.parametrize("storage", ["local", "kachery"])
def test_result_store_with_metadata_storage(tmp_path: Path, storage: str) -> None:
    if storage == "local":
        meta: Any = LocalFileSystem(basepath=str(tmp_path / "metadata"))
        results: Any = LocalFileSystem(basepath=str(tmp_path / "results"))
    else:  # Prefect writes metadata and result under one key: separate namespaces
        meta = KacheryStorage(root=str(tmp_path / "s"), namespace="prefect-keys")
        results = KacheryStorage(root=str(tmp_path / "s"))
    store = ResultStore(
        metadata_storage=meta, result_storage=results, serializer=KacherySerializer()
    )
    store.write(key="test", obj="test")
    assert store.read(key="test").result == "test"
    assert store.exists("test") and not store.exists("nonexistent")
    raw = results.read_path("test")
    assert parse_uri(raw.decode()).label == "result.json"  # the payload alone: a URI


def test_cached_record_expiration(tmp_path: Path) -> None:
    store = ResultStore(
        result_storage=LocalFileSystem(basepath=str(tmp_path)),
        serializer=KacherySerializer(),
        cache_result_in_memory=True,
    )
    fresh = store.create_result_record(
        "v", key="fresh", expiration=now("UTC") + timedelta(seconds=60)
    )
    stale = store.create_result_record(
        "v", key="stale", expiration=now("UTC") - timedelta(seconds=1)
    )
    store.persist_result_record(fresh)
    store.persist_result_record(stale)
    assert store.read("fresh").result == "v" and store.exists("fresh")
    assert not store.exists("stale")


# ---- failures seen when Prefect's cases first ran against kachery (issue 16)


def test_an_int_beyond_the_str_digit_limit_is_pickled(store: Store) -> None:
    big = 7**6000  # 5071 digits: str() refuses it, so JSON cannot hold it
    ser = KacherySerializer(store=store)
    blob = ser.dumps(big)
    assert parse_uri(blob.decode()).label == "result.pkl"
    assert ser.loads(blob) == big
    assert ser.loads(ser.dumps([1, 2**64])) == [1, 2**64]  # ordinary ints stay JSON

    @kachery_cached(store=store)
    def power(n: int) -> int:
        return 7**n

    assert power(6000) == big and power(6000) == big and power.is_cached(6000)


def test_a_hit_returns_an_array_like_the_first_run(store: Store) -> None:
    ser = KacherySerializer(store=store)
    first = np.arange(6.0)
    hit = ser.loads(ser.dumps(first))
    assert type(hit) is type(first) and hit.flags.writeable == first.flags.writeable
    hit += 1  # a private copy-on-write map: the stored object stays as it was
    np.testing.assert_array_equal(ser.loads(ser.dumps(first)), np.arange(6.0))


class NeedsTwoArguments(Exception):
    """Pickles fine but cannot be unpickled (``__init__`` wants two arguments)."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"{code}: {detail}")

    def __reduce__(self) -> tuple[Any, ...]:
        # what plain pickle does (the class and its args), whatever hooks other code
        # installed for exceptions in this process (a Prefect run does)
        return (type(self), self.args)


def test_an_intact_result_that_cannot_be_unpickled_is_not_called_corrupt(store: Store) -> None:
    ser = KacherySerializer(store=store)
    blob = ser.dumps(NeedsTwoArguments(3, "failed"))
    with pytest.raises(DecodeError, match="intact") as info:
        ser.loads(blob)
    assert "quarantine" not in str(info.value)
    assert store.object_path(blob.decode()).is_file()  # stays put
    assert not store.quarantine_dir.exists() or not any(store.quarantine_dir.iterdir())
