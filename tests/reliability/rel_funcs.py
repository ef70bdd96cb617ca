"""Cached functions importable by the test process and by its helper processes."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from kachery_flows import kachery_cached


def series(seed: int, n: int) -> Any:
    """The deterministic value ``memo_series(seed, n)`` computes."""
    return np.random.default_rng(seed).standard_normal(n)


def _mark(marker: str) -> None:
    if marker:
        with open(marker, "a") as f:
            f.write(f"{os.getpid()}\n")


def runs(marker: str) -> int:
    """How many times a body ran with this marker."""
    try:
        with open(marker) as f:
            return len(f.read().split())
    except FileNotFoundError:
        return 0


@kachery_cached(ignore=["marker"])
def memo_series(seed: int, n: int, marker: str = "") -> Any:
    """``series(seed, n)``; appends the pid to ``marker`` (if given) each time it runs."""
    _mark(marker)
    return series(seed, n)


@kachery_cached(ignore=["marker", "delay"])
def slow_series(seed: int, n: int, marker: str = "", delay: float = 0.0) -> Any:
    """``series(seed, n)`` after ``delay`` seconds; marks ``marker`` like memo_series."""
    _mark(marker)
    time.sleep(delay)
    return series(seed, n)
