"""Kachery tasks under prefect-dask's DaskTaskRunner on a real LocalCluster (2 worker
processes): Refs travel between workers instead of arrays, and the cache still works."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pytest
from prefect import flow
from prefect_tasks import make_signal, make_signal_ref, runs, signal_sum

from kachery_flows import Ref

pytestmark = pytest.mark.integration

N = 1 << 20  # 8 MiB of float64 per signal


@pytest.fixture
def cluster_address(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """A LocalCluster whose worker processes inherit this test's environment: its kachery
    store (set by the autouse fixture) and ``KF_TEST_MARKER``."""
    distributed = pytest.importorskip("distributed")
    monkeypatch.setenv("KF_TEST_MARKER", str(tmp_path / "runs.txt"))
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        host="127.0.0.1",
    ) as cluster:
        yield cluster.scheduler_address


def _shipped_bytes(future: Any) -> int:
    """Size of what Dask carries for a task run: the pickled Prefect State."""
    return len(cloudpickle.dumps(future.wrapped_future.result()))


def test_refs_travel_between_dask_workers(
    cluster_address: str, results_dir: Path, tmp_path: Path
) -> None:
    from prefect_dask import DaskTaskRunner

    marker = tmp_path / "runs.txt"

    @flow(task_runner=DaskTaskRunner(address=cluster_address))
    def pipeline(n: int) -> dict[str, Any]:
        refs = [make_signal_ref.submit(n, seed) for seed in (1, 2)]
        sums = [signal_sum.submit(ref) for ref in refs]
        value = make_signal.submit(n, 1)
        for future in [*refs, *sums, value]:
            future.wait()
        return {
            "refs": [f.result() for f in refs],
            "sums": [f.result() for f in sums],
            "ref_states": [f.state.name for f in refs],
            "ref_bytes": max(_shipped_bytes(f) for f in [*refs, *sums]),
            "value_bytes": _shipped_bytes(value),
        }

    first = pipeline(N)
    assert all(isinstance(r, Ref) for r in first["refs"])
    assert first["ref_states"] == ["Completed", "Completed"]
    assert first["ref_bytes"] < 2048  # a Ref and its tiny record, never the array
    assert first["value_bytes"] > N * 8  # an array result rides inside the State
    for ref, total in zip(first["refs"], first["sums"], strict=True):
        assert total == pytest.approx(float(np.sum(ref.load())))
    second = pipeline(N)
    assert second["ref_states"] == ["Cached", "Cached"]
    assert second["refs"] == first["refs"] and second["sums"] == first["sums"]
    assert second["ref_bytes"] < 2048
    assert runs(marker, "make_signal_ref") == 2 and runs(marker, "signal_sum") == 2
