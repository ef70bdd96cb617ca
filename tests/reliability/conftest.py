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
from pathlib import Path

import pytest
from rel_helpers import Forker
from summary_table import Figures, session_figures, write_table

from kachery_flows.testing.fixtures import fast_retry as fast_retry
from kachery_flows.testing.fixtures import http_directory_server as http_directory_server

_FIGURES = pytest.StashKey[Figures]()


@pytest.fixture(scope="session")
def figures(pytestconfig: pytest.Config) -> Figures:
    """The session's figure table."""
    return session_figures(pytestconfig, _FIGURES)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    table = config.stash.get(_FIGURES, None)
    if table is not None:
        write_table(terminalreporter, "reliability figures", ("area", "what", "value"), table.rows)


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
