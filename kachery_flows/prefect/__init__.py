"""Prefect integration: kachery result persistence, content-keyed caching, URI passing.

::

    from kachery_flows.prefect import kachery_task

    @kachery_task                         # or @kachery_task(retries=2, version="3")
    def preprocess(raw): ...

    @kachery_task(return_ref=True)        # persist and ship only a sha1:// Ref
    def spectrum(x): ...

* :class:`KacherySerializer`: Prefect's result record holds the result's ``sha1://`` URI;
  the bytes live in the kachery store (npy / canonical JSON / cloudpickle).
* :class:`KacheryInputs` / :data:`KACHERY_DEFAULT`: cache keys from the task's identity
  and the content tokens of its inputs (the tokens ``@kachery_cached`` uses).
* :func:`kachery_task`: ``prefect.task`` with both set and ``persist_result=True``.
* :class:`KacheryStorage`: an optional result-storage block (``result_storage=``) that
  keeps Prefect's records in the store's ref map, shared through the zone.

Importing this module imports Prefect; ``import kachery_flows`` never does.
"""

from __future__ import annotations

from .._extras import raise_missing_extra

try:
    from ._policy import KACHERY_DEFAULT, PREFECT_KEY_SCHEMA, KacheryInputs
    from ._serializer import KacherySerializer
    from ._storage import KacheryStorage, RefusedRecordError
    from ._task import kachery_task
except ModuleNotFoundError as exc:
    raise_missing_extra("prefect", ("prefect", "prefect_dask", "pydantic", "anyio"), exc)

__all__ = [
    "KACHERY_DEFAULT",
    "PREFECT_KEY_SCHEMA",
    "KacheryInputs",
    "KacherySerializer",
    "KacheryStorage",
    "RefusedRecordError",
    "kachery_task",
]
