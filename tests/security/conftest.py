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
from pathlib import Path
from typing import Any

import pytest
from summary_table import Figures, session_figures, write_table

HERE = Path(__file__).parent
#: Limits of an attack's process: address space, file size (disk filling), CPU seconds.
MEMORY_LIMIT = 3 << 30
FILE_LIMIT = 256 << 20
TIMEOUT = 120.0


_TABLE = pytest.StashKey[Figures]()


@pytest.fixture
def held(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """``held(attack, outcome)`` records a row naming the calling test."""
    table = session_figures(request.config, _TABLE)

    def add(attack: str, outcome: str) -> None:
        table.add(attack, outcome, request.node.name)

    return add


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    table = config.stash.get(_TABLE, None)
    if table is not None:
        write_table(
            terminalreporter,
            f"security: {len(table.rows)} attacks tried, all held",
            ("attack", "outcome", "test"),
            table.rows,
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
        env = dict(
            os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
        )
        try:
            proc = subprocess.run(
                [sys.executable, str(HERE / "sec_runner.py"), name, str(work), json.dumps(params)],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
                cwd=work,
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
