"""Cached functions importable by subprocesses, multiprocessing and Dask workers.

Each appends a line (its pid) to ``marker`` when its body runs, so tests count real
executions across processes; ``marker`` is left out of the key.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from kachery_flows import Ref, kachery_cached


def _mark(marker: str) -> None:
    with open(marker, "a") as f:
        f.write(f"{os.getpid()}\n")


@kachery_cached(ignore=["marker", "delay"])
def slow_square(x: float, marker: str, delay: float = 0.0) -> float:
    _mark(marker)
    time.sleep(delay)
    return x * x


@kachery_cached(ignore=["marker"])
def make_signal(n: int, seed: int, marker: str) -> Any:
    _mark(marker)
    return np.random.default_rng(seed).standard_normal(n)


@kachery_cached(ignore=["marker"])
def total(x: Any, marker: str) -> float:
    _mark(marker)
    return float(np.asarray(x).sum())


@kachery_cached(ignore=["marker"], return_ref=True)
def signal_ref(n: int, seed: int, marker: str) -> Any:
    _mark(marker)
    return np.random.default_rng(seed).standard_normal(n)


@kachery_cached(ignore=["marker"])
def total_of_ref(ref: Ref, marker: str) -> float:
    _mark(marker)
    return float(ref.load(mmap_mode="r").sum())


def count(marker: str) -> int:
    """How many times a body ran with this marker."""
    try:
        with open(marker) as f:
            return len(f.read().split())
    except FileNotFoundError:
        return 0


def plain_double(x: int) -> int:
    """Not decorated here: tests wrap it with ``kachery_cached(plain_double)``."""
    return 2 * x
