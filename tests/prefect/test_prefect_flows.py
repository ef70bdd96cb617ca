"""Real flows on the session's Prefect API server: caching, records, Refs, recomputation."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prefect import flow
from prefect_tasks import (
    async_scale,
    cube,
    describe,
    flaky,
    make_signal,
    make_signal_ref,
    ref_flow,
    runs,
    signal_flow,
    signal_sum,
    square,
)

from kachery_flows import Ref, get_default_store, parse_uri
from kachery_flows.prefect import kachery_task

pytestmark = pytest.mark.integration


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "runs.txt"
    monkeypatch.setenv("KF_TEST_MARKER", str(path))
    return path


def records(results_dir: Path) -> dict[str, dict[str, Any]]:
    """Prefect's result records in ``results_dir``, parsed, by the URI or Ref they hold."""
    found = {}
    for path in results_dir.iterdir():
        record = json.loads(path.read_bytes())
        found[record["result"]] = record
    return found


@flow
def twice(n: int) -> tuple[Any, Any]:
    return make_signal(n, 1, return_state=True), make_signal(n, 1, return_state=True)


def test_completed_then_cached_in_a_new_flow_run(results_dir: Path, marker: Path) -> None:
    first, again = twice(1000)
    assert first.name == "Completed" and again.name == "Cached"
    second, _ = twice(1000)
    assert second.name == "Cached"
    assert runs(marker, "make_signal") == 1
    np.testing.assert_array_equal(first.result(), second.result())
    np.testing.assert_array_equal(signal_flow(1000, 1), first.result())
    ((uri, record),) = records(results_dir).items()
    assert (results_dir / Path(record["metadata"]["storage_key"]).name).stat().st_size < 1024
    assert record["metadata"]["serializer"]["type"] == "kachery"
    ref = parse_uri(uri)
    assert ref.label == "make_signal.npy"
    np.testing.assert_array_equal(ref.load(), first.result())


def test_different_tasks_with_equal_inputs_do_not_collide(results_dir: Path, marker: Path) -> None:
    @flow
    def powers(x: float) -> tuple[float, float]:
        return square(x), cube(x)

    assert powers(3.0) == (9.0, 27.0)
    assert powers(3.0) == (9.0, 27.0)
    assert runs(marker) == 2 and len(records(results_dir)) == 2


def test_a_missing_object_means_recomputation_not_failure(results_dir: Path, marker: Path) -> None:
    store = get_default_store()
    expected = signal_flow(500, 7)
    (uri,) = records(results_dir)
    store.object_path(uri).unlink()
    state = flow(lambda: make_signal(500, 7, return_state=True), name="again")()
    assert state.name == "Completed"
    np.testing.assert_array_equal(state.result(), expected)
    assert runs(marker, "make_signal") == 2 and store.object_path(uri).exists()
    # a corrupt copy is moved aside and recomputed too
    store.object_path(uri).write_bytes(b"\x93NUMPY garbage")
    assert flow(lambda: make_signal(500, 7, return_state=True), name="again")().name == (
        "Completed"
    )
    assert runs(marker, "make_signal") == 3 and any(store.quarantine_dir.iterdir())


def test_refs_pass_between_tasks_and_stay_tiny_records(results_dir: Path, marker: Path) -> None:
    ref, total = ref_flow(20_000, 3)
    assert isinstance(ref, Ref) and ref.codec == "npy" and ref.label == "make_signal_ref.npy"
    signal = ref.load()
    assert total == pytest.approx(float(signal.sum()))
    assert ref_flow(20_000, 3) == (ref, total)
    assert runs(marker) == 2  # both bodies once
    by_result = records(results_dir)
    ref_records = [r for text, r in by_result.items() if text.startswith("{")]
    assert len(ref_records) == 1 and len(json.dumps(ref_records[0])) < 600
    # the Ref's object vanished: the producing task runs again instead of passing a
    # dangling Ref downstream
    get_default_store().object_path(ref).unlink()
    assert ref_flow(20_000, 3) == (ref, total)
    assert runs(marker, "make_signal_ref") == 2 and runs(marker, "signal_sum") == 1
    np.testing.assert_array_equal(ref.load(), signal)


def test_task_options_pass_through(results_dir: Path, marker: Path) -> None:
    @flow
    def run_flaky(x: int) -> int:
        return flaky(x)

    assert run_flaky(1) == 2 and runs(marker, "flaky") == 2  # one retry
    assert run_flaky(1) == 2 and runs(marker, "flaky") == 2  # cached
    assert flaky.retries == 2


def test_versions_key_the_cache(results_dir: Path, marker: Path) -> None:
    def body(x: float) -> float:
        from prefect_tasks import note

        note("body")
        return x + 0.5

    v1 = kachery_task(version="1")(body)
    v2 = kachery_task(version="2")(body)

    @flow
    def run(x: float) -> list[float]:
        return [v1(x), v1(x), v2(x), v1.with_options(name="renamed")(x)]

    assert run(1.0) == [1.5] * 4
    assert runs(marker, "body") == 2


def test_async_tasks(results_dir: Path, marker: Path) -> None:
    @flow
    async def scaled(x: float) -> list[float]:
        return [await async_scale(x, 2.0), await async_scale(x, 2.0)]

    assert asyncio.run(scaled(4.0)) == [8.0, 8.0]
    assert runs(marker, "async_scale") == 1


def test_unhashable_inputs_run_uncached(
    results_dir: Path, marker: Path, caplog: pytest.LogCaptureFixture
) -> None:
    @flow
    def run() -> list[str]:
        lock = threading.Lock()
        return [describe(lock), describe(lock)]

    assert run() == ["lock", "lock"]
    assert runs(marker, "describe") == 2 and not list(results_dir.iterdir())
    assert "UnhashableArgumentError" in caplog.text and "input 'obj'" in caplog.text


def test_downstream_task_keys_on_the_ref_hash(results_dir: Path, marker: Path) -> None:
    stored = get_default_store().put_npy(np.arange(10.0))

    @flow
    def totals() -> list[float]:
        return [signal_sum(stored), signal_sum(stored.with_label("renamed.npy"))]

    assert totals() == [45.0, 45.0]
    assert runs(marker, "signal_sum") == 1
    assert make_signal_ref.fn.__name__ == "make_signal_ref"
