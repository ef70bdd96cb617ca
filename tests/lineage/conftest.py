"""The lineage tests' pipeline: run once per session in another process (process A, its
own store, a shared directory zone); the tests read it from other stores (machine B)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Pipeline:
    """What process A made: object hashes by step, the memo key, and the zone."""

    base: str
    raw: str
    filtered: str
    summary: str
    key: str
    zone: Path
    store_a: Path


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    work = tmp_path_factory.mktemp("lineage-pipeline")
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join([str(HERE), *filter(None, [env.get("PYTHONPATH")])]),
        KACHERY_CLOUD_DIR=str(work / "store-a"),
        KACHERY_ZONE=f"file://{work / 'zone'}",
        KACHERY_FLOWS_FSYNC="0",
        PREFECT_HOME=str(work / "prefect-home"),
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="240",
    )
    env.pop("PREFECT_API_URL", None)  # Prefect's ephemeral server, in process A
    proc = subprocess.run(
        [sys.executable, str(HERE / "run_pipeline.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return Pipeline(**out, zone=work / "zone", store_a=work / "store-a")


@pytest.fixture
def pipeline(pipeline_run: Pipeline, tmp_path: Path) -> Pipeline:
    """A private copy of the pipeline's zone (tests damage it), as machine B sees it."""
    zone = tmp_path / "zone"
    shutil.copytree(pipeline_run.zone, zone)
    return Pipeline(**{**pipeline_run.__dict__, "zone": zone})
