"""Planted Prefect records cannot make a reader run code (SECURITY.md, Prefect paragraph).

Whoever can write a shared result directory or zone can write Prefect records. A record
names its serializer and that serializer's settings; Prefect rebuilds the serializer from
the record and calls its ``loads``. Two attacks, each run in a fresh process whose flow's
cache check finds the planted record; a pickle that would create ``PWNED`` must never run,
and Prefect runs the task again instead:

* a kachery record naming the attacker's store as ``root`` (where a trust marker says its
  pickle is "ours");
* a record of Prefect's pickle serializer planted in a ``KacheryStorage`` zone.
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from prefect._internal.result_records import ResultRecord
from pydantic import ValidationError

from kachery_flows import Store
from kachery_flows.action_cache import action_cache
from kachery_flows.prefect import KacheryStorage, RefusedRecordError
from kachery_flows.refmap import RefMap

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent
KEY = "planted-key"


class _Payload:
    """Pickles to a call that creates the file ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (f"open({self.path!r}, 'w').write('code ran')",))


VICTIM = """
import json, sys
from prefect import flow, task
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from kachery_flows.prefect import KacherySerializer

storage = sys.argv[1] if len(sys.argv) > 1 else None

@task(cache_key_fn=lambda *args: "planted-key", persist_result=True,
      result_serializer=KacherySerializer(), result_storage=storage)
def analysis(x: int) -> int:
    return x + 1

@flow
def run():
    return analysis(41, return_state=True)

if __name__ == "__main__":
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        state = run()
    print(json.dumps({"state": state.name, "value": state.result()}))
"""


def _victim(env_extra: dict[str, str], args: list[str], api_url: str) -> dict[str, Any]:
    env = dict(
        os.environ,
        PREFECT_API_URL=api_url,
        PREFECT_LOGGING_LEVEL="ERROR",
        PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        **env_extra,
    )
    proc = subprocess.run(
        [sys.executable, "-c", VICTIM, *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def _record(serializer: dict[str, Any], result: str) -> bytes:
    return json.dumps(
        {
            "metadata": {
                "storage_key": KEY,
                "expiration": None,
                "serializer": serializer,
                "prefect_version": "3.9.1",
                "storage_block_id": None,
            },
            "result": result,
        }
    ).encode()


def test_a_record_cannot_choose_the_store_its_reader_opens(
    prefect_api_url: str, results_dir: Path, tmp_path: Path
) -> None:
    pwned = tmp_path / "PWNED"
    evil = Store(tmp_path / "attacker-store")
    ref = evil.put_bytes(pickle.dumps(_Payload(pwned), protocol=4), "analysis.pkl")
    action_cache(evil).trust(ref.sha1)  # the attacker's store "trusts" its own pickle
    record = _record({"type": "kachery", "root": str(evil.root), "zone": None}, ref.uri)
    (results_dir / KEY).write_bytes(record)

    with pytest.raises(ValidationError, match="records cannot choose the store"):
        ResultRecord.deserialize(record)
    zoned = _record({"type": "kachery", "root": None, "zone": "http://127.0.0.1:9/"}, ref.uri)
    with pytest.raises(ValidationError, match="records cannot choose the store"):
        ResultRecord.deserialize(zoned)

    out = _victim({"PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(results_dir)}, [], prefect_api_url)
    assert out == {"state": "Completed", "value": 42}  # recomputed, not loaded
    assert not pwned.exists()
    assert json.loads((results_dir / KEY).read_bytes())["metadata"]["serializer"] == {
        "type": "kachery",
        "artifact": False,
    }  # Prefect rewrote the entry with this process's own record


def test_kachery_storage_refuses_records_of_other_serializers(
    prefect_api_url: str, results_dir: Path, tmp_path: Path
) -> None:
    pwned = tmp_path / "PWNED"
    zone = tmp_path / "zone"
    name = f"test-{uuid.uuid4().hex[:12]}"
    KacheryStorage(zone=f"file://{zone}").save(name)
    payload = base64.b64encode(pickle.dumps(_Payload(pwned), protocol=4)).decode()
    record = _record({"type": "pickle", "picklelib": "pickle"}, payload)
    attacker = Store(tmp_path / "attacker", zone=f"file://{zone}")
    RefMap(attacker).set(f"prefect-results/{KEY}", attacker.put_bytes(record).uri)

    block = KacheryStorage(root=str(tmp_path / "reader"), zone=f"file://{zone}")
    with pytest.raises(RefusedRecordError, match="not written by the kachery serializer"):
        block.read_path(KEY)
    with pytest.raises(RefusedRecordError):
        block.write_path("other", record)  # nor does it keep them when Prefect writes

    out = _victim(
        {"KACHERY_CLOUD_DIR": str(tmp_path / "victim")},
        [f"kachery-storage/{name}"],
        prefect_api_url,
    )
    assert out == {"state": "Completed", "value": 42}
    assert not pwned.exists()
    rewritten = block.read_path(KEY)
    assert json.loads(rewritten)["metadata"]["serializer"]["type"] == "kachery"
