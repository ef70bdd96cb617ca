"""Fixtures of the security suite, and the table of attacks it prints.

Every attack runs in a subprocess (:func:`attack`): a crash, a signal, a hang past its
timeout, or memory or disk use past the limits set on the child is a failing test, not a
lost test run. Each test records what it tried and how it held through the ``held``
fixture; the table is printed at the end of the run (``pytest_terminal_summary``), the
way ``tests/reliability`` prints its figures.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
#: Limits of an attack's process: address space, file size (disk filling), CPU seconds.
MEMORY_LIMIT = 3 << 30
FILE_LIMIT = 256 << 20
TIMEOUT = 120.0


@dataclass
class AttackTable:
    """Rows of (attack, outcome, test), in the order the tests recorded them."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)


_TABLE = pytest.StashKey[AttackTable]()


@pytest.fixture(scope="session")
def attack_table(pytestconfig: pytest.Config) -> AttackTable:
    """The session's attack table."""
    if _TABLE not in pytestconfig.stash:
        pytestconfig.stash[_TABLE] = AttackTable()
    return pytestconfig.stash[_TABLE]


@pytest.fixture
def held(request: pytest.FixtureRequest, attack_table: AttackTable) -> Callable[[str, str], None]:
    """``held(attack, outcome)`` records a row naming the calling test."""

    def add(attack: str, outcome: str) -> None:
        attack_table.rows.append((attack, outcome, request.node.name))
        print(f"[security] {attack}: {outcome}")

    return add


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    table = config.stash.get(_TABLE, None)
    if table is None or not table.rows:
        return
    header = ("attack", "outcome", "test")
    widths = [max(len(r[i]) for r in [header, *table.rows]) for i in range(3)]
    terminalreporter.write_sep("=", f"security: {len(table.rows)} attacks tried, all held")
    for cells in (header, tuple("-" * w for w in widths), *table.rows):
        terminalreporter.write_line(
            " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
        )


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    # the hard limit stays open so an attack can plant a big file before it reads
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, resource.RLIM_INFINITY))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


@pytest.fixture
def attack(tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """``attack("module.function", **params)`` runs ``sec_<module>.attack_<function>`` in
    a child process with memory, file-size and time limits and returns what it reported
    (a JSON object). A crash, signal or timeout fails the test."""

    def run(name: str, timeout: float = TIMEOUT, **params: Any) -> dict[str, Any]:
        work = tmp_path / f"attack-{name}"
        work.mkdir(exist_ok=True)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(HERE), os.environ.get("PYTHONPATH", "")]))
        try:
            proc = subprocess.run(
                [sys.executable, str(HERE / "sec_runner.py"), name, str(work),
                 json.dumps(params)],
                capture_output=True, text=True, timeout=timeout, env=env, cwd=work,
                preexec_fn=_limits,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"attack {name} hung: no answer within {timeout} s")
        if proc.returncode != 0:
            pytest.fail(
                f"attack {name} crashed the reader (exit {proc.returncode}):\n"
                f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
            )
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        assert lines, proc.stdout + proc.stderr
        result: dict[str, Any] = json.loads(lines[-1])
        return result

    return run
