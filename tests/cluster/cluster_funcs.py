"""Task functions the separately started workers import (this folder is on their
``PYTHONPATH``). Cached functions append a line to ``marker`` when their body runs."""

from __future__ import annotations

import os
import socket
from typing import Any

import numpy as np

from kachery_flows import get_default_store, kachery_cached
from kachery_flows.dask import load_refs


def mark(marker: str, what: str) -> None:
    with open(marker, "a") as f:
        f.write(f"{what} {os.getpid()}\n")


@kachery_cached(ignore=["marker"], return_ref=True)
def make_array(n: int, seed: int, marker: str) -> Any:
    mark(marker, "make_array")
    return np.random.default_rng(seed).standard_normal(n)


@load_refs
def total(x: Any) -> float:
    return float(np.asarray(x).sum())


def store_info() -> dict[str, Any]:
    """The worker's store: root, zone, size bound, and the objects it holds locally."""
    store = get_default_store()
    return {
        "root": str(store.root),
        "zone": store.zone.name if store.zone is not None else None,
        "max_size": store.bound.limit if store.bound is not None else None,
        "objects": sorted(store.iter_hashes()),
        "host": socket.gethostname(),
    }


def stream(uris: list[str]) -> int:
    """Load each URI in turn through the worker's store; the largest local size seen."""
    from kachery_flows._evict import store_size

    store = get_default_store()
    peak = 0
    for uri in uris:
        store.load_bytes(uri)
        peak = max(peak, store_size(str(store.root))[1])
    return peak
