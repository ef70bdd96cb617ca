"""Helpers for tests that run code in fresh interpreters."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent


def python_env(**extra: str) -> dict[str, str]:
    """The current environment plus this folder on PYTHONPATH (for memo_funcs)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), *filter(None, [env.get("PYTHONPATH")])])
    env.update(extra)
    return env


def run_python(
    args: list[str], *, cwd: Path | None = None, timeout: float = 240, **extra: str
) -> str:
    """Run ``python args...`` in a fresh interpreter; return its stdout (must exit 0)."""
    proc = subprocess.run(
        [sys.executable, *args],
        env=python_env(**extra),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def age(root: Path, days: float) -> None:
    """Set the mtime of every file under ``root`` to ``days`` ago."""
    when = time.time() - days * 86400
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, (when, when))
