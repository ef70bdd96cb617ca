"""Cached functions as Prefect tasks (sync and async), in a flow run by a real (temporary)
Prefect API server. Runs in a subprocess with its own ``PREFECT_HOME`` so nothing here
imports prefect into the test process or touches ``~/.prefect``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from memo_helpers import run_python

FLOW_SCRIPT = """
import asyncio, inspect, json, sys
import memo_funcs
from prefect import flow, task
from kachery_flows import kachery_cached

marker = sys.argv[1]


@kachery_cached(ignore=["marker"])
async def fetch_scale(name: str, marker: str) -> float:
    with open(marker, "a") as f:
        f.write("async\\n")
    await asyncio.sleep(0.01)
    return {"a": 2.0, "b": 3.0}[name]


square = task(memo_funcs.slow_square)
scale = task(fetch_scale)


@flow
async def analysis(xs):
    factor = await scale("b", marker)
    futures = square.map(xs, marker)
    return [factor * v for v in futures.result()]


if __name__ == "__main__":
    first = asyncio.run(analysis([1.0, 2.0, 2.0]))
    second = asyncio.run(analysis([2.0, 1.0]))
    print(json.dumps({"first": first, "second": second, "isasync": scale.isasync,
                      "sync_isasync": square.isasync}))
"""


@pytest.mark.integration
def test_cached_functions_as_prefect_tasks(tmp_path: Path) -> None:
    pytest.importorskip("prefect")
    script = tmp_path / "flow.py"
    script.write_text(FLOW_SCRIPT)
    marker = tmp_path / "runs.txt"
    home = tmp_path / "prefect-home"
    out = run_python(
        [str(script), str(marker)],
        timeout=600,
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_API_URL="",
        PREFECT_PROFILES_PATH=str(home / "profiles.toml"),
        PREFECT_LOGGING_LEVEL="WARNING",
    )
    result = json.loads(out.strip().splitlines()[-1])
    assert result == {
        "first": [3.0, 12.0, 12.0],
        "second": [12.0, 3.0],
        "isasync": True,
        "sync_isasync": False,
    }
    runs = marker.read_text().split()
    assert runs.count("async") == 1 and len(runs) == 3  # fetch_scale once, squares of 1 and 2
