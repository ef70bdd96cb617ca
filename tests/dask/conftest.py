"""A real ``distributed.LocalCluster`` (2 worker processes, 1 thread each) shared by the
Dask tests, and a per-test client whose workers use the test's own store.

Workers start once, so they never see the per-test ``KACHERY_CLOUD_DIR`` that the root
conftest sets: the ``client`` fixture registers a :class:`KacheryPlugin` built from the
test's environment, which points every worker at the test's store.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

import dask_funcs  # noqa: E402

from kachery_flows.dask import KacheryPlugin  # noqa: E402


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[distributed.LocalCluster]:
    with dask_funcs.local_cluster() as cluster:
        yield cluster


@pytest.fixture
def client(dask_cluster: distributed.LocalCluster) -> Iterator[distributed.Client]:
    """A client of the shared cluster; every worker uses this test's store."""
    with distributed.Client(dask_cluster) as client:
        client.register_plugin(KacheryPlugin())
        yield client


@pytest.fixture
def workers(client: distributed.Client) -> list[str]:
    """The two worker addresses, sorted."""
    return sorted(client.scheduler_info()["workers"])


@pytest.fixture
def marker(tmp_path: Path) -> str:
    """A file the functions in dask_funcs append to each time their body runs."""
    return str(tmp_path / "marker.txt")
