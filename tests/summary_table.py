"""The end-of-run tables of ``tests/reliability`` (figures) and ``tests/security``
(attacks): rows recorded by tests during the session, printed by each conftest's
``pytest_terminal_summary`` so they show in plain CI output."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest


@dataclass
class Figures:
    """Rows of three cells, in the order the tests recorded them."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, first: str, second: str, third: object) -> None:
        """Record one row (and print it, for ``-s`` runs)."""
        self.rows.append((first, second, str(third)))
        print(f"[{first}] {second}: {third}")


def session_figures(config: pytest.Config, key: pytest.StashKey[Figures]) -> Figures:
    """The session's table stored under ``key`` (created on first use)."""
    if key not in config.stash:
        config.stash[key] = Figures()
    return config.stash[key]


def write_table(
    terminalreporter: pytest.TerminalReporter,
    title: str,
    header: tuple[str, str, str],
    rows: Sequence[tuple[str, str, str]],
) -> None:
    """Write ``rows`` under ``header`` as an aligned ``|``-separated table."""
    if not rows:
        return
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    terminalreporter.write_sep("=", title)
    for cells in (header, tuple("-" * w for w in widths), *rows):
        terminalreporter.write_line(
            " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
        )
