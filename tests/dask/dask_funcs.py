"""Task functions the Dask workers import (this folder is on their ``sys.path``), and the
cluster the tests run them on.

Cached functions append a line to ``marker`` when their body runs, so tests count real
executions across worker processes and clusters; ``marker`` is left out of the key.
"""

from __future__ import annotations

import os
from typing import Any

import distributed
import numpy as np

from kachery_flows import Ref, get_default_store, kachery_cached
from kachery_flows.dask import from_kachery, load_refs


def local_cluster() -> distributed.LocalCluster:
    """2 worker processes, 1 thread each, on 127.0.0.1.

    ``dashboard_address=":0"``: with None the scheduler's HTTP server still binds the
    default port 8787, and every other cluster started meanwhile warns that it is in use.
    """
    return distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        host="127.0.0.1",
    )


def mark(marker: str, what: str) -> None:
    with open(marker, "a") as f:
        f.write(f"{what} {os.getpid()}\n")


def count(marker: str, what: str | None = None) -> int:
    """How many bodies ran (only those named ``what``, if given)."""
    try:
        with open(marker) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return 0
    return sum(1 for line in lines if what is None or line.split()[0] == what)


@kachery_cached(ignore=["marker"], return_ref=True)
def make_recording(n_channels: int, n_samples: int, seed: int, marker: str) -> Any:
    mark(marker, "make_recording")
    return np.random.default_rng(seed).standard_normal((n_channels, n_samples))


@kachery_cached(ignore=["marker"], return_ref=True)
@load_refs
def highpass(x: Any, width: int, marker: str) -> Any:
    """Subtract a moving average of ``width`` samples from every channel."""
    mark(marker, "highpass")
    kernel = np.ones(width) / width
    smooth = np.stack([np.convolve(ch, kernel, mode="same") for ch in x])
    return x - smooth


@kachery_cached(ignore=["marker"], return_ref=True)
@load_refs
def channel_rms(x: Any, marker: str) -> Any:
    mark(marker, "channel_rms")
    return np.sqrt(np.mean(np.square(x), axis=1))


@kachery_cached(ignore=["marker"])
@load_refs
def combine(parts: list[Any], marker: str) -> float:
    mark(marker, "combine")
    return float(sum(float(np.max(p)) for p in parts))


def produce_value(n: int, seed: int) -> Any:
    return np.random.default_rng(seed).standard_normal(n)


def produce_ref(n: int, seed: int) -> Ref:
    return get_default_store().put_npy(produce_value(n, seed))


@load_refs
def describe(x: Any) -> dict[str, Any]:
    """What a task received: its type, whether it is read-only, its sum."""
    return {
        "type": type(x).__name__,
        "writeable": bool(np.asarray(x).flags.writeable),
        "sum": float(np.sum(x)),
    }


def block_flags(block: Any) -> Any:
    """Per block: [is a memory map, is writeable]."""
    return np.array([[isinstance(block, np.memmap), block.flags.writeable]])


def worker_environment() -> dict[str, str | None]:
    return {
        name: os.environ.get(name)
        for name in ("KACHERY_CLOUD_DIR", "KACHERY_ZONE", "KACHERY_FLOWS_FSYNC")
    }


def default_root() -> str:
    return str(get_default_store().root)


def graph_of(uri: str) -> tuple[str, list[Any]]:
    """Build ``from_kachery(uri)`` here (on a worker): its name and graph keys."""
    arr = from_kachery(uri)
    return arr.name, sorted(arr.__dask_graph__().keys())
