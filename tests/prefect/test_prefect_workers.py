"""Prefect across machines: a real ``prefect server start``, a process work pool and a
``prefect worker`` with its own kachery store, sharing only a zone (a shared directory)
with the client. The deployed flow file is stock Prefect: it never imports kachery-flows;
Prefect's settings alone (``PREFECT_PLUGINS_ENABLED``, ``PREFECT_RESULTS_DEFAULT_SERIALIZER``,
``PREFECT_RESULTS_PERSIST_BY_DEFAULT``, ``PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK``) put every
result into kachery. A third process with a third store reads the flow run's result through
the API, loading it from the zone. docs/howto/prefect_across_machines.md describes this
setup."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kachery_flows import Store, parse_uri

pytestmark = pytest.mark.integration

STOCK_FLOW = """
import numpy as np
from prefect import flow, task
from prefect.cache_policies import INPUTS, TASK_SOURCE

@task(cache_policy=INPUTS + TASK_SOURCE)
def make_signal(n: int, seed: int):
    return np.random.default_rng(seed).standard_normal(n)

@task(cache_policy=INPUTS + TASK_SOURCE)
def summarize(x) -> dict:
    return {"mean": float(x.mean()), "n": int(x.size)}

@flow
def pipeline(n: int, seed: int) -> dict:
    x = make_signal(n, seed)
    return {"first": float(x[0]), "summary": summarize(x)}  # sorted keys: stored as JSON
"""

CLIENT = """
import json, sys
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectAlreadyExists
from kachery_flows.prefect import KacheryStorage

with get_client(sync_client=True) as client:
    try:  # the worker creates it too, if it starts first
        client.create_work_pool(WorkPoolCreate(name="lab-pool", type="process"))
    except ObjectAlreadyExists:
        pass
KacheryStorage().save("lab-results")  # root/zone: each process's own KACHERY_* settings
flow.from_source(sys.argv[1], entrypoint="stock_flow.py:pipeline").deploy(
    name="lab", work_pool_name="lab-pool", print_next_steps=False,
)
runs = []
for _ in range(2):
    run = run_deployment("pipeline/lab", parameters={"n": 20000, "seed": 7}, timeout=120,
                         poll_interval=1)
    with get_client(sync_client=True) as client:
        tasks = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))
        )
    runs.append({"flow_run_id": str(run.id), "state": run.state.name,
                 "tasks": sorted(f"{t.name.split('-')[0]}:{t.state.name}" for t in tasks)})
print(json.dumps(runs))
"""

READ = """
import json, sys
from uuid import UUID
from prefect.client.orchestration import get_client

with get_client(sync_client=True) as client:
    flow_run = client.read_flow_run(UUID(sys.argv[1]))
value = flow_run.state.result()
print(json.dumps({"kachery_imported_by_plugin": "kachery_flows.prefect" in sys.modules,
                  "value": value}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _Processes:
    """Processes started by one test, each in its own process group, all killed at the end."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.started.append(proc)

    def stop(self) -> None:
        for proc in reversed(self.started):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self.started):
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def tail(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.logs.iterdir())
        )


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[_Processes]:
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = _Processes(logs)
    try:
        yield procs
    finally:
        procs.stop()


def _machine(tmp_path: Path, name: str, api_url: str, zone: Path) -> dict[str, str]:
    """The environment of one "machine": its own Prefect home and kachery store, the
    shared zone, and the Prefect settings that route every result through kachery."""
    home = tmp_path / name
    (home / "prefect").mkdir(parents=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_", "KACHERY_", "KF_", "PYTEST_"))
    }
    env.update(
        PREFECT_HOME=str(home / "prefect"),
        PREFECT_PROFILES_PATH=str(home / "prefect" / "profiles.toml"),
        PREFECT_API_URL=api_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_PLUGINS_ENABLED="true",
        PREFECT_RESULTS_DEFAULT_SERIALIZER="kachery",
        PREFECT_RESULTS_PERSIST_BY_DEFAULT="true",
        KACHERY_CLOUD_DIR=str(home / "kachery-cloud"),
        KACHERY_ZONE=f"file://{zone}",
        KACHERY_FLOWS_FSYNC="0",
    )
    return env


def _run(script: str, args: list[str], env: dict[str, str], cwd: Path) -> Any:
    proc = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _wait_healthy(url: str, processes: _Processes, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"prefect server did not start\n{processes.tail()}")


def test_deployment_on_a_worker_shares_results_through_the_zone(
    tmp_path: Path, processes: _Processes
) -> None:
    zone = tmp_path / "zone"
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "stock_flow.py").write_text(STOCK_FLOW)
    api_url = f"http://127.0.0.1:{_free_port()}/api"
    port = api_url.split(":")[2].split("/")[0]
    server_env = _machine(tmp_path, "server", api_url, zone)
    server_env.update(PREFECT_SERVER_UI_ENABLED="false", PREFECT_PLUGINS_ENABLED="false")
    server_env.update(
        {
            f"PREFECT_SERVER_SERVICES_{service}_ENABLED": "false"
            for service in (
                "SCHEDULER",
                "LATE_RUNS",
                "FOREMAN",
                "PAUSE_EXPIRATIONS",
                "CANCELLATION_CLEANUP",
                "REPOSSESSOR",
                "TRIGGERS",
                "CLEANUP_RECONCILER",
            )
        }
    )  # services this test does not need, on a busy 2-core machine
    processes.start(
        "server",
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", port],
        server_env,
    )
    client = _machine(tmp_path, "client", api_url, zone)
    worker = _machine(tmp_path, "worker", api_url, zone)
    # records too go through the zone: the KacheryStorage block saved by the client
    worker.update(
        PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK="kachery-storage/lab-results",
        PREFECT_WORKER_QUERY_SECONDS="1",
        PREFECT_WORKER_PREFETCH_SECONDS="2",
    )
    _wait_healthy(api_url, processes)
    # the worker starts while the client deploys
    processes.start(
        "worker",
        [
            sys.executable,
            "-m",
            "prefect",
            "worker",
            "start",
            "--pool",
            "lab-pool",
            "--type",
            "process",
        ],
        worker,
    )
    try:
        first, second = _run(CLIENT, [str(flows)], client, tmp_path)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{processes.tail()}") from None
    assert first["state"] == "Completed", processes.tail()
    assert first["tasks"] == ["make_signal:Completed", "summarize:Completed"]
    assert second["state"] == "Completed"
    assert second["tasks"] == ["make_signal:Cached", "summarize:Cached"]

    # every result is a kachery object in the zone; the records sit in the zone's ref map
    records = sorted((zone / "refs" / "prefect-results").iterdir())
    assert len(records) >= 3  # two task records and the flow's result
    texts = [Store(zone).load_bytes(p.read_text()) for p in records]
    docs = [json.loads(t) for t in texts if t.startswith(b"{")]
    uris = [d["result"] for d in docs] + [t.decode() for t in texts if t.startswith(b"sha1://")]
    assert any(parse_uri(u).label == "make_signal.npy" for u in uris)
    assert all(d["metadata"]["serializer"] == {"type": "kachery", "artifact": False} for d in docs)

    reader = _machine(tmp_path, "reader", api_url, zone)
    out = _run(READ, [second["flow_run_id"]], reader, tmp_path)
    assert out["kachery_imported_by_plugin"] is True
    summary = out["value"]["summary"]
    assert summary["n"] == 20000 and abs(summary["mean"]) < 0.05
    fetched = set(Store(tmp_path / "reader" / "kachery-cloud").iter_hashes())
    assert fetched and fetched <= set(Store(zone).iter_hashes())  # loaded through the zone
    assert not set(Store(tmp_path / "client" / "kachery-cloud").iter_hashes()) & {
        parse_uri(u).sha1 for u in uris if parse_uri(u).label == "make_signal.npy"
    }  # the client never computed anything: the worker did
