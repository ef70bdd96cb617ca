"""Prefect's own task/flow result-persistence and caching cases (PrefectHQ/prefect
``tests/results/test_task_results.py``, ``test_flow_results.py``, ``test_result_store.py``
and ``tests/test_tasks.py::TestTaskCaching``), run with KacherySerializer on the session's
Prefect server. Each persisted result is re-read from storage (the in-memory copy is
bypassed), as Prefect's tests do with ``ResultStore._from_metadata``."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prefect import flow, task
from prefect.results import ResultStore, get_result_store
from prefect.settings import PREFECT_RESULTS_DEFAULT_SERIALIZER, temporary_settings
from prefect.states import State
from prefect.testing.utilities import exceptions_equal

from kachery_flows import parse_uri
from kachery_flows.prefect import KacherySerializer, KacheryStorage

pytestmark = pytest.mark.integration

KACHERY = KacherySerializer()


def stored(state: State, storage: Any = None) -> Any:
    """The state's result as read back from its storage (not Prefect's in-memory copy):
    from the local path it names, or through ``storage``."""
    record = state.data
    assert record is not None and record.metadata.storage_key, "result was not persisted"
    assert isinstance(record.metadata.serializer, KacherySerializer)
    if storage is not None:
        reader = ResultStore(result_storage=storage, serializer=record.metadata.serializer)
        return reader.read(record.metadata.storage_key).result
    return asyncio.run(ResultStore._from_metadata(record.metadata)).result


@pytest.mark.parametrize("value", [None, True, False, {}, [], "", {"a": [1, 2.5]}])
def test_task_literal_and_empty_results_are_persisted(results_dir: Path, value: Any) -> None:
    @task(persist_result=True, result_serializer=KACHERY)
    def echo() -> Any:
        return value

    @flow
    def run() -> State:
        return echo(return_state=True)

    state = run()
    assert state.result() == value and stored(state) == value
    assert type(stored(state)) is type(value)


def test_failed_task_exception_is_persisted(results_dir: Path) -> None:
    @task(persist_result=True, result_serializer=KACHERY)
    def broken() -> None:
        raise ValueError("persist me")

    states: list[State] = []

    @flow
    def run() -> None:
        states.append(broken(return_state=True))

    run()
    (state,) = states
    assert state.is_failed()
    assert exceptions_equal(stored(state), ValueError("persist me"))
    assert exceptions_equal(state.result(raise_on_failure=False), ValueError("persist me"))


def test_failed_flow_exception_is_persisted(results_dir: Path) -> None:
    @flow(persist_result=True, result_serializer=KACHERY)
    def broken() -> None:
        raise RuntimeError("flow failed")

    state = broken(return_state=True)
    assert state.is_failed()
    assert exceptions_equal(stored(state), RuntimeError("flow failed"))


@pytest.mark.parametrize("source", ["task", "flow"])
def test_task_serializer_from_task_or_inherited_from_flow(results_dir: Path, source: str) -> None:
    on_task = {"result_serializer": KACHERY} if source == "task" else {}
    on_flow = {"result_serializer": KACHERY} if source == "flow" else {}

    @task(persist_result=True, **on_task)
    def make() -> np.ndarray:
        return np.arange(4.0)

    @flow(**on_flow)
    def run() -> State:
        return make(return_state=True)

    state = run()
    np.testing.assert_array_equal(stored(state), np.arange(4.0))
    record = json.loads(Path(state.data.metadata.storage_key).read_bytes())
    assert parse_uri(record["result"]).label == "make.npy"


def test_flow_and_child_flow_results_by_serializer_name(results_dir: Path) -> None:
    @flow(persist_result=True, result_serializer="kachery")
    def child() -> dict[str, int]:
        return {"a": 1}

    @flow(persist_result=True, result_serializer="kachery")
    def parent() -> State:
        return child(return_state=True)

    child_state = parent()
    assert stored(child_state) == {"a": 1}


def test_default_serializer_setting(results_dir: Path) -> None:
    @task(persist_result=True)
    def make() -> list[int]:
        return [1, 2]

    @flow(persist_result=True)
    def run() -> tuple[State, Any]:
        return make(return_state=True), get_result_store().serializer

    with temporary_settings({PREFECT_RESULTS_DEFAULT_SERIALIZER: "kachery"}):
        state, flow_serializer = run()
    assert type(flow_serializer) is KacherySerializer
    assert stored(state) == [1, 2]


def test_flow_result_storage_by_slug(results_dir: Path) -> None:
    name = f"peer-{uuid.uuid4().hex[:10]}"
    KacheryStorage().save(name)

    @flow(persist_result=True, result_serializer=KACHERY, result_storage=f"kachery-storage/{name}")
    def run() -> list[str]:
        return ["stored", "in", "kachery"]

    state = run(return_state=True)
    assert state.data.metadata.storage_block_id is not None
    assert stored(state, KacheryStorage.load(name)) == ["stored", "in", "kachery"]
    assert not list(results_dir.iterdir())  # the record went to the block, not the dir


def test_task_caching_between_flows_expiration_and_refresh(results_dir: Path) -> None:
    calls: list[int] = []

    @task(cache_key_fn=lambda *_: f"peer-{id(calls)}", result_serializer=KACHERY)
    def counted(x: int) -> np.ndarray:
        calls.append(x)
        return np.full(3, x, dtype=np.int64)

    @flow
    def run(x: int, **options: Any) -> State:
        return counted.with_options(**options)(x, return_state=True)

    first, second = run(1), run(2)
    assert (first.name, second.name) == ("Completed", "Cached") and calls == [1]
    first_value, hit = first.result(), second.result()
    np.testing.assert_array_equal(hit, first_value)
    assert type(hit) is type(first_value) and hit.flags.writeable
    refreshed = run(3, refresh_cache=True, cache_expiration=timedelta(seconds=1))
    assert refreshed.name == "Completed" and calls == [1, 3]
    time.sleep(1.2)  # the entry written by the refresh expires
    assert run(4).name == "Completed" and calls == [1, 3, 4]
