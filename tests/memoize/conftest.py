"""Fixtures for the memoization tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def marker(tmp_path: Path) -> str:
    """A file the functions in memo_funcs append to each time their body runs."""
    return str(tmp_path / "marker.txt")
