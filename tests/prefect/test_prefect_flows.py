"""Real flows on the session's Prefect API server: caching, records, Refs, recomputation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from prefect_tasks import make_signal, runs, signal_flow

pytestmark = pytest.mark.integration


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "runs.txt"
    monkeypatch.setenv("KF_TEST_MARKER", str(path))
    return path


def test_completed_then_cached_in_a_new_flow_run(results_dir: Path, marker: Path) -> None:
    from prefect import flow

    @flow
    def pipeline(n: int) -> tuple[object, object]:
        return make_signal(n, 1, return_state=True), make_signal(n, 1, return_state=True)

    first, again = pipeline(1000)
    assert first.name == "Completed" and again.name == "Cached"
    second, _ = pipeline(1000)
    assert second.name == "Cached"
    assert runs(marker, "make_signal") == 1
    np.testing.assert_array_equal(first.result(), second.result())
    assert signal_flow(1000, 1).shape == (1000,)
    records = list(results_dir.iterdir())
    assert len(records) == 1
    text = records[0].read_text()
    assert len(text) < 1024 and "sha1://" in text and '"type":"kachery"' in text
