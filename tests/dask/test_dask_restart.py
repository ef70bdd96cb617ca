"""Cached tasks survive a cluster restart: the same dask.delayed pipeline run on a new
cluster (new scheduler, new worker processes, nothing in memory) recomputes nothing."""

from __future__ import annotations

import os
from typing import Any

import dask
import dask_funcs
import distributed
import numpy as np
import pytest

from kachery_flows import Ref
from kachery_flows.dask import KacheryPlugin, load_ref

pytestmark = pytest.mark.integration


def _pipeline(marker: str) -> Any:
    rec = dask.delayed(dask_funcs.make_recording)(8, 20_000, 11, marker)
    filtered = [dask.delayed(dask_funcs.highpass)(rec, w, marker) for w in (9, 31, 101)]
    rms = [dask.delayed(dask_funcs.channel_rms)(f, marker) for f in filtered]
    return dask.delayed(dask_funcs.combine)(rms, marker), rms


def _run_on_a_new_cluster(marker: str) -> tuple[float, list[Ref], set[int]]:
    with dask_funcs.local_cluster() as cluster, distributed.Client(cluster) as client:
        client.register_plugin(KacheryPlugin())
        pids = set(client.run(os.getpid).values())
        total, rms = _pipeline(marker)
        value, refs = dask.compute(total, rms)
    return value, list(refs), pids


def test_a_restarted_cluster_recomputes_nothing(marker: str) -> None:
    first, first_refs, first_pids = _run_on_a_new_cluster(marker)
    assert dask_funcs.count(marker) == 1 + 3 + 3 + 1
    second, second_refs, second_pids = _run_on_a_new_cluster(marker)
    assert not first_pids & second_pids  # really other worker processes
    assert dask_funcs.count(marker) == 8  # nothing ran again
    assert second == first and second_refs == first_refs
    x = np.random.default_rng(11).standard_normal((8, 20_000))
    smooth = np.stack([np.convolve(ch, np.ones(9) / 9, mode="same") for ch in x])
    np.testing.assert_allclose(load_ref(second_refs[0]), np.sqrt(np.mean((x - smooth) ** 2, 1)))
