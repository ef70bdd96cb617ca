"""Fixtures of the reliability suite, and the table of figures it prints.

Every test records what it tried and what it found (bits flipped / detected, kill rounds /
corrupt objects, fuzz cases ...) through the ``figures`` fixture; the table is printed at
the end of the run (``pytest_terminal_summary``), so it shows in plain CI output.

Counts are sized for CI; ``KACHERY_FLOWS_RELIABILITY_<NAME>`` environment variables raise
them for a longer local run (see :func:`rel_helpers.count`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from rel_helpers import Forker

from kachery_flows.testing.fixtures import fast_retry as fast_retry
from kachery_flows.testing.fixtures import http_directory_server as http_directory_server


@dataclass
class Figures:
    """Rows of (area, what, value), in the order the tests recorded them."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, area: str, what: str, value: object) -> None:
        """Record one figure."""
        self.rows.append((area, what, str(value)))
        print(f"[{area}] {what}: {value}")


_FIGURES = pytest.StashKey[Figures]()


@pytest.fixture(scope="session")
def figures(pytestconfig: pytest.Config) -> Figures:
    """The session's figure table."""
    if _FIGURES not in pytestconfig.stash:
        pytestconfig.stash[_FIGURES] = Figures()
    return pytestconfig.stash[_FIGURES]


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    table = config.stash.get(_FIGURES, None)
    if table is None or not table.rows:
        return
    header = ("area", "what", "value")
    widths = [max(len(r[i]) for r in [header, *table.rows]) for i in range(3)]
    terminalreporter.write_sep("=", "reliability figures")
    for cells in (header, tuple("-" * w for w in widths), *table.rows):
        terminalreporter.write_line(
            " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
        )


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """A fresh directory in memory (``/dev/shm``) when there is one, else ``tmp_path``.

    For loops of thousands of small writes and unlinks whose subject is detection, not
    the file system: they run several times faster on tmpfs than on a shared disk.
    """
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="kachery-reliability-", dir=shm))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def _short_retry_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KACHERY_FLOWS_RETRY_SECONDS", "5")


@pytest.fixture
def zone_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A shared-directory zone for the default store (helper processes inherit it)."""
    root = tmp_path / "zone"
    monkeypatch.setenv("KACHERY_ZONE", f"file://{root}")
    return root


@pytest.fixture
def forker(tmp_path: Path, zone_root: Path) -> Iterator[Forker]:
    """A running ``rel_forker.py`` on the default store and ``zone_root``."""
    f = Forker(tmp_path / "forker.log")
    yield f
    f.close()
