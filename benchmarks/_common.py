"""Helpers shared by the benchmark scripts: interleaved timing and ratio tables."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence


def interleaved(
    cases: dict[str, Callable[[int], object]],
    repeats: int,
    setup: Callable[[int], object] | None = None,
) -> dict[str, list[float]]:
    """Run every case once per round, ``repeats`` rounds; return the seconds per case.

    ``setup(round)`` runs (untimed) before each case, e.g. to make content distinct.
    """
    times: dict[str, list[float]] = {name: [] for name in cases}
    for r in range(repeats):
        for name, fn in cases.items():
            if setup is not None:
                setup(r)
            t0 = time.perf_counter()
            fn(r)
            times[name].append(time.perf_counter() - t0)
    return times


def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence."""
    return statistics.median(values)


def fmt_seconds(s: float) -> str:
    """Human-readable duration."""
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def print_table(title: str, rows: list[tuple[str, float]], baseline: str) -> None:
    """Print ``rows`` (name, seconds) with each row's ratio to the ``baseline`` row."""
    base = dict(rows)[baseline]
    width = max(len(name) for name, _ in rows)
    print(f"\n{title}")
    print(f"  {'case':<{width}}  {'median':>10}  {'÷ ' + baseline:>14}")
    for name, seconds in rows:
        print(f"  {name:<{width}}  {fmt_seconds(seconds):>10}  {seconds / base:>13.2f}×")
