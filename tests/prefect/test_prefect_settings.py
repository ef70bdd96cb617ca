"""Settings-only configuration (a stock flow file configured by ``prefect.toml`` alone) and
the result artifact shown in Prefect's UI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from kachery_flows import get_default_store, parse_uri
from kachery_flows.prefect import kachery_task

pytestmark = pytest.mark.integration

STOCK = """
import json, sys
import numpy as np
from prefect import flow, task
from prefect.cache_policies import INPUTS, TASK_SOURCE

@task(cache_policy=INPUTS + TASK_SOURCE)
def make(n: int):
    return np.arange(n, dtype=float)

@flow
def pipeline(n: int):
    return make(n, return_state=True)

if __name__ == "__main__":
    states = [pipeline(5), pipeline(5)]
    print(json.dumps({"states": [s.name for s in states], "sum": float(states[1].result().sum()),
                      "kachery_flows": "kachery_flows.prefect" in sys.modules}))
"""

PREFECT_TOML = """
[plugins]
enabled = true

[results]
default_serializer = "kachery"
persist_by_default = true
local_storage_path = "{results}"
"""


def _stock(tmp_path: Path, api_url: str, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_RESULTS_")}
    env.update(
        PREFECT_API_URL=api_url,
        PREFECT_LOGGING_LEVEL="ERROR",
        KACHERY_CLOUD_DIR=str(tmp_path / "kachery-cloud"),
        **env_extra,
    )
    return subprocess.run(
        [sys.executable, "stock_flow.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_prefect_toml_alone_routes_a_stock_flow_through_kachery(
    prefect_api_url: str, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    (tmp_path / "stock_flow.py").write_text(STOCK)
    (tmp_path / "prefect.toml").write_text(PREFECT_TOML.format(results=results))
    proc = _stock(tmp_path, prefect_api_url)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"states": ["Completed", "Cached"], "sum": 10.0, "kachery_flows": True}
    task_records = [
        json.loads(p.read_bytes()) for p in results.iterdir() if p.read_bytes().startswith(b"{")
    ]
    (record,) = [r for r in task_records if r["result"].endswith("make.npy")]
    assert record["metadata"]["serializer"] == {"type": "kachery", "artifact": False}
    stored = parse_uri(record["result"])
    assert (
        (tmp_path / "kachery-cloud")
        .joinpath("sha1", stored.sha1[:2], stored.sha1[2:4], stored.sha1[4:6], stored.sha1)
        .is_file()
    )

    # the control: without the plugin, Prefect cannot resolve the serializer name
    proc = _stock(tmp_path, prefect_api_url, PREFECT_PLUGINS_ENABLED="false")
    assert proc.returncode != 0
    assert "No class found for dispatch key 'kachery'" in proc.stderr


def _artifacts(key: str) -> list[Any]:
    with get_client(sync_client=True) as client:
        found: list[Any] = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
        return found


def test_artifact_names_uri_size_codec_key_and_how_to_load(results_dir: Path) -> None:
    @kachery_task(artifact=True)
    def spectrum(n: int) -> np.ndarray:
        return np.linspace(0.0, 1.0, n)

    @kachery_task
    def quiet_spectrum(n: int) -> np.ndarray:
        return np.linspace(0.0, 1.0, n)

    @flow
    def run() -> tuple[Any, Any]:
        return spectrum(1000, return_state=True), quiet_spectrum(1000, return_state=True)

    state, _ = run()
    record = json.loads((results_dir / Path(state.data.metadata.storage_key).name).read_bytes())
    uri = record["result"]
    (artifact,) = _artifacts("kachery-spectrum")
    text = artifact.data
    size = get_default_store().object_path(uri).stat().st_size
    for expected in (
        f"| URI | `{uri}` |",
        f"{size:,} bytes",
        "| codec | npy |",
        "kf.load_npy(uri)",
        f'kcl.load_npy("{uri}")',
        f"kachery-flows lineage {uri}",
        Path(state.data.metadata.storage_key).name,
    ):
        assert expected in text, expected
    assert artifact.task_run_id == state.state_details.task_run_id
    assert not _artifacts("kachery-quiet-spectrum")  # off by default
    run()  # a cache hit persists nothing: no second artifact
    assert len(_artifacts("kachery-spectrum")) == 1
