"""Provenance of Prefect task results: :class:`KacherySerializer` calls
:func:`note_task_result` for every result it persists, inside the task run.

The record (see :mod:`kachery_flows._lineage_records`) names the task's function, its
version or code fingerprint, the task run's parameters, its duration (from the start of
the task run to the result being persisted), the Prefect cache key, task run and flow run.
A Ref the task returned is recorded only if no producer of it is known yet (e.g. a
``return_ref=True`` task), so a Ref made by a memoized call keeps the memo record.
"""

from __future__ import annotations

import inspect
import time
from typing import Any

from prefect.context import TaskRunContext

from .._funcid import code_fingerprint, function_identity
from .._lineage_records import is_indexed, stored_result, write_provenance
from ..store import Store
from ..uri import Ref

__all__ = ["note_task_result"]


def note_task_result(store: Store, ref: Ref, value: Any) -> None:
    """Write the provenance record of ``ref``, the result of the running task (nothing
    outside a task run, or for a Ref whose producer is already indexed)."""
    ctx = TaskRunContext.get()
    if ctx is None or (isinstance(value, Ref) and is_indexed(store, ref.sha1)):
        return
    task = ctx.task
    fn = inspect.unwrap(task.fn)
    try:
        code = code_fingerprint(fn)
    except TypeError:
        code = "unavailable"
    started = ctx.start_time.timestamp()
    run = ctx.task_run
    write_provenance(
        store,
        key=run.cache_key or "",
        function=function_identity(fn),
        version=task.version,
        code=code,
        inputs=ctx.parameters,
        result=stored_result(store, ref, value),
        duration=max(time.time() - started, 0.0),
        created=started,
        producer={
            "tool": "prefect",
            "task": task.name,
            "task_run": str(run.id),
            "flow_run": str(run.flow_run_id) if run.flow_run_id else None,
        },
    )
