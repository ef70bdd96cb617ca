"""A dependency-free progress meter for long transfers, printed to stderr."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["PROGRESS_THRESHOLD", "ProgressMeter"]

#: Transfers at least this large show progress in the CLI.
PROGRESS_THRESHOLD = 100 * 1024 * 1024


def _fmt(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


class ProgressMeter:
    """Call with byte counts as they are processed; :meth:`close` prints the total."""

    def __init__(self, total: int | None, description: str, stream: TextIO | None = None) -> None:
        self.total = total
        self.description = description
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self._start = time.monotonic()
        self._last = 0.0

    def __call__(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= 0.25:
            self._last = now
            self._render(final=False)

    def _render(self, *, final: bool) -> None:
        elapsed = max(time.monotonic() - self._start, 1e-9)
        rate = f"{_fmt(self.done / elapsed)}/s"
        if self.total:
            pct = 100.0 * self.done / self.total
            text = f"{self.description}: {pct:5.1f}% {_fmt(self.done)}/{_fmt(self.total)} {rate}"
        else:
            text = f"{self.description}: {_fmt(self.done)} {rate}"
        self.stream.write(("\r" + text) + ("\n" if final else ""))
        self.stream.flush()

    def close(self) -> None:
        """Print the final line."""
        self._render(final=True)
