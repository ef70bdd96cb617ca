"""Helpers shared by the benchmark scripts: interleaved timing, ratio tables, JSON results.

Every table a script prints is also recorded; when ``KACHERY_BENCH_JSON`` names a file, the
tables are appended to it as JSON lines at exit, which ``benchmarks/report.py`` turns into
the benchmark report (``docs/benchmarks.md`` and its plots).
"""

from __future__ import annotations

import atexit
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

_TABLES: list[dict[str, Any]] = []


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


def per_call(
    cases: dict[str, Callable[[], object]], repeats: int, number: int = 1
) -> dict[str, float]:
    """Median seconds per call of each case: one warm-up, then ``repeats`` interleaved
    rounds of ``number`` calls each (for calls too fast to time one by one)."""

    def batch(fn: Callable[[], object]) -> Callable[[int], None]:
        def run(_: int) -> None:
            for _ in range(number):
                fn()

        return run

    batched = {name: batch(fn) for name, fn in cases.items()}
    for run in batched.values():
        run(0)
    times = interleaved(batched, repeats)
    return {name: median(ts) / number for name, ts in times.items()}


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
    _TABLES.append(
        {
            "kind": "ratio",
            "title": title,
            "baseline": baseline,
            "rows": [{"case": name, "seconds": seconds} for name, seconds in rows],
        }
    )


def print_comparison(title: str, rows: list[dict[str, Any]]) -> None:
    """Print a table of our time against an anchor's, one measurement per row.

    Each row has ``what``, ``ours`` (seconds), and optionally ``anchor`` (seconds),
    ``anchor_name``, ``target`` and ``note`` (shown instead of the anchor when there is
    none). ``anchor / ours`` is how many times faster we are.
    """
    cells = [("what", "kachery-flows", "anchor", "anchor / ours", "target")]
    for row in rows:
        anchor = row.get("anchor")
        cells.append(
            (
                row["what"],
                fmt_seconds(row["ours"]),
                f"{fmt_seconds(anchor)} ({row.get('anchor_name', '')})"
                if anchor is not None
                else row.get("note", "-"),
                f"{anchor / row['ours']:.1f}×" if anchor is not None else "-",
                row.get("target", "-"),
            )
        )
    widths = [max(len(r[i]) for r in cells) for i in range(5)]
    print(f"\n{title}")
    for i, r in enumerate(cells):
        print("  " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
        if i == 0:
            print("  " + "-|-".join("-" * w for w in widths))
    _TABLES.append({"kind": "comparison", "title": title, "rows": rows})


def note(text: str) -> None:
    """Print a one-line figure that belongs in the report (e.g. a size or an import time)."""
    print(text)
    _TABLES.append({"kind": "note", "title": text})


def _dump() -> None:
    target = os.environ.get("KACHERY_BENCH_JSON")
    if not target or not _TABLES:
        return
    script = Path(sys.argv[0]).stem
    with open(target, "a", encoding="utf-8") as f:
        for table in _TABLES:
            f.write(
                json.dumps(
                    {
                        "script": script,
                        "python": platform.python_version(),
                        **table,
                    }
                )
                + "\n"
            )


atexit.register(_dump)
