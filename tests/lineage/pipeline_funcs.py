"""The steps of the test pipeline (importable, so records name them by module)."""

from __future__ import annotations

from typing import Any

import numpy as np

from kachery_flows import Ref, kachery_cached
from kachery_flows.dask import from_kachery


@kachery_cached(return_ref=True)
def smooth(raw: Ref, width: int) -> Any:
    """Moving average of the checkpointed array ``raw``."""
    x = np.asarray(from_kachery(raw).compute(scheduler="sync"), dtype=float)
    return np.convolve(x.ravel(), np.ones(width) / width, mode="same")


def summarize_fn(filtered: Ref, raw: Ref) -> dict[str, float]:
    """The Prefect step's body: summary numbers of both arrays."""
    a = filtered.load()
    b = np.asarray(from_kachery(raw).compute(scheduler="sync"))
    return {"filtered_mean": float(a.mean()), "raw_sum": float(b.sum())}


@kachery_cached(return_ref=True)
def chunk(i: int) -> Any:
    """One piece of a wide pipeline (a leaf step)."""
    return np.full(8, float(i))


@kachery_cached(return_ref=True)
def clean(part: Ref) -> Any:
    """The same step on every piece: the repeated subtree the page folds."""
    return (np.abs(part.load()) + 1.0).astype(np.float32)


@kachery_cached(return_ref=True)
def combine(parts: list[Ref]) -> Any:
    """Everything together."""
    return np.concatenate([p.load() for p in parts])


def wide_pipeline(n: int) -> Ref:
    """``combine`` of ``n`` cleaned chunks: ``2 n + 1`` computed objects."""
    return combine.ref([clean.ref(chunk.ref(i)) for i in range(n)])
