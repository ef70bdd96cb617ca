"""Every script in examples/ runs to completion on a temporary store, so examples never rot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script: Path, tmp_path: Path) -> None:
    env = dict(
        os.environ,
        KACHERY_CLOUD_DIR=str(tmp_path / "store"),
        PREFECT_HOME=str(tmp_path / "prefect"),
    )
    env.pop("KACHERY_ZONE", None)
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{script.name} failed:\n{result.stdout}\n{result.stderr}"
    assert "sha1://" in result.stdout
