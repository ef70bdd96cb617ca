"""KacheryStorage, the result-storage block: directly, then saved on the session's
server as a task's result_storage, shared with another machine through the zone alone."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prefect import flow
from prefect._internal.result_records import ResultRecord, ResultRecordMetadata
from prefect_tasks import make_signal, runs

from kachery_flows import InvalidRefNameError, ObjectNotFoundError, Store, parse_uri
from kachery_flows.prefect import KacherySerializer, KacheryStorage

HERE = Path(__file__).parent


def kachery_record(value: object) -> bytes:
    """A Prefect result record of ``value`` written by the kachery serializer."""
    record = ResultRecord(
        metadata=ResultRecordMetadata(serializer=KacherySerializer()), result=value
    )
    return record.serialize()


RECORD = kachery_record([1, 2, 3])


def test_write_then_read_through_the_ref_map(tmp_path: Path) -> None:
    block = KacheryStorage(root=str(tmp_path / "store"))
    uri = block.write_path("0123abcd", RECORD, _sync=True)
    assert block.read_path("0123abcd", _sync=True) == RECORD
    assert Store(tmp_path / "store").load_bytes(uri) == RECORD
    name = tmp_path / "store" / ".kachery-flows" / "refs" / "prefect-results" / "0123abcd"
    assert name.read_text() == uri
    assert block._resolve_path("0123abcd") == "0123abcd"
    assert asyncio.run(block.aread_path("0123abcd")) == RECORD
    new = kachery_record("new")
    asyncio.run(block.awrite_path("0123abcd", new))
    assert block.read_path("0123abcd") == new
    keys = KacheryStorage(root=str(tmp_path / "store"), namespace="prefect-keys")
    with pytest.raises(FileNotFoundError):
        keys.read_path("0123abcd")  # namespaces never alias


def test_bad_names_and_missing_objects(tmp_path: Path) -> None:
    block = KacheryStorage(root=str(tmp_path / "store"))
    for bad in ("../escape", "a//b", "with space"):
        with pytest.raises(InvalidRefNameError):
            block.write_path(bad, RECORD)
    with pytest.raises(FileNotFoundError):
        block.read_path("never-written")
    uri = block.write_path("k", RECORD)
    object_path = block.get_store().object_path(uri)
    object_path.write_bytes(b"corrupt")
    with pytest.raises(ObjectNotFoundError, match="missing or corrupt"):
        block.read_path("k")
    assert not object_path.exists()  # moved to the quarantine; a rewrite replaces it
    block.write_path("k", RECORD)
    assert block.read_path("k") == RECORD


def test_the_map_lives_in_a_writable_zone(tmp_path: Path) -> None:
    zone = f"file://{tmp_path}/zone"
    KacheryStorage(root=str(tmp_path / "a"), zone=zone).write_path("key1", RECORD)
    assert KacheryStorage(root=str(tmp_path / "b"), zone=zone).read_path("key1") == RECORD
    assert (tmp_path / "zone" / "refs" / "prefect-results" / "key1").is_file()


MACHINE_B = """
import json, sys
from prefect.blocks.core import Block
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
loaded_before = "kachery_flows" in sys.modules
block = Block.load(sys.argv[1])  # found through the prefect.collections entry point
from prefect import flow
from prefect_tasks import make_signal

@flow
def one():
    return make_signal.with_options(result_storage=block)(3000, 5, return_state=True)

if __name__ == "__main__":
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        state = one()
    print(json.dumps({"loaded_before": loaded_before, "type": type(block).__name__,
                      "state": state.name, "sum": float(state.result().sum())}))
"""


@pytest.mark.integration
def test_saved_block_shares_the_cache_through_the_zone(
    prefect_api_url: str, results_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "runs.txt"
    monkeypatch.setenv("KF_TEST_MARKER", str(marker))
    zone = tmp_path / "zone"
    # every machine names the zone; the block, like the serializer, uses each process's
    # default store, so its records and the results are shared through the zone
    monkeypatch.setenv("KACHERY_ZONE", f"file://{zone}")
    name = f"test-{uuid.uuid4().hex[:12]}"
    KacheryStorage().save(name)
    on_block = make_signal.with_options(result_storage=f"kachery-storage/{name}")

    @flow
    def one() -> Any:
        return on_block(3000, 5, return_state=True)

    first, second = one(), one()
    assert (first.name, second.name) == ("Completed", "Cached")
    assert not list(results_dir.iterdir())  # nothing in Prefect's local result storage
    (record_ref,) = (zone / "refs" / "prefect-results").iterdir()
    record = json.loads(Store(zone).load_bytes(record_ref.read_text()))
    assert parse_uri(record["result"]).label == "make_signal.npy"

    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])]),
        PREFECT_API_URL=prefect_api_url,
        PREFECT_LOGGING_LEVEL="WARNING",
        KACHERY_CLOUD_DIR=str(tmp_path / "machine-b"),
    )
    proc = subprocess.run(
        [sys.executable, "-c", MACHINE_B, f"kachery-storage/{name}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    expected = float(first.result().sum())
    assert out == {
        "loaded_before": False,
        "type": "KacheryStorage",
        "state": "Cached",
        "sum": expected,
    }
    assert runs(marker, "make_signal") == 1
    np.testing.assert_array_equal(second.result(), first.result())
