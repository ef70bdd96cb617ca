"""Tasks and flows of the Prefect tests, importable by subprocesses and Dask workers.

Every task body appends its name to the file ``$KF_TEST_MARKER`` (when set), so tests
count how often bodies really ran, in any process.
"""

from __future__ import annotations

import os

import numpy as np
from prefect import flow

from kachery_flows import Ref
from kachery_flows.prefect import kachery_task


def note(name: str) -> None:
    """Record that the body of ``name`` ran."""
    marker = os.environ.get("KF_TEST_MARKER")
    if marker:
        with open(marker, "a") as f:
            f.write(name + "\n")


def runs(marker: str | os.PathLike[str], name: str | None = None) -> int:
    """How many bodies (named ``name``, or any) ran so far."""
    try:
        with open(marker) as f:
            lines = f.read().split()
    except FileNotFoundError:
        return 0
    return len(lines) if name is None else lines.count(name)


@kachery_task
def make_signal(n: int, seed: int) -> np.ndarray:
    note("make_signal")
    return np.random.default_rng(seed).standard_normal(n)


@kachery_task
def square(x: float) -> float:
    note("square")
    return x * x


@kachery_task
def cube(x: float) -> float:
    note("cube")
    return x * x * x


@kachery_task(return_ref=True)
def make_signal_ref(n: int, seed: int) -> np.ndarray:
    note("make_signal_ref")
    return np.random.default_rng(seed).standard_normal(n)


@kachery_task
def signal_sum(signal: Ref) -> float:
    note("signal_sum")
    return float(np.sum(signal.load()))


@flow
def signal_flow(n: int, seed: int) -> np.ndarray:
    return make_signal(n, seed)


@flow
def ref_flow(n: int, seed: int) -> tuple[Ref, float]:
    ref = make_signal_ref(n, seed)
    return ref, signal_sum(ref)


@kachery_task
async def async_scale(x: float, factor: float) -> float:
    note("async_scale")
    return x * factor


@kachery_task(retries=2, retry_delay_seconds=0)
def flaky(x: int) -> int:
    """Fails on its first attempt of each run, then succeeds."""
    note("flaky")
    marker = os.environ["KF_TEST_MARKER"]
    if runs(marker, "flaky") % 2 == 1:
        raise RuntimeError("first attempt fails")
    return x + 1


@kachery_task
def describe(obj: object) -> str:
    note("describe")
    return type(obj).__name__
