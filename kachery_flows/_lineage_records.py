"""Provenance records for results that are not memoized calls: Prefect task results and
Dask checkpoints (``kachery_flows.prefect`` and ``kachery_flows.dask`` call in here).

They use the memo record schema (:func:`kachery_flows.records.build_record`) plus a
``producer`` field naming the tool, and are stored as ordinary objects (uploaded to the
zone, never garbage-collected), like the results they describe. Each one is entered in
the reverse index (:mod:`kachery_flows._lineage_index`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from ._lineage_index import lookup, note_producer
from ._results import StoredResult, scan_refs
from .action_cache import action_cache
from .errors import UnhashableArgumentError
from .records import build_record
from .store import Store
from .tokens import argument_encoding
from .uri import Ref

__all__ = ["is_indexed", "stored_result", "write_provenance"]


def stored_result(store: Store, ref: Ref, value: Any, type_name: str | None = None) -> StoredResult:
    """A :class:`StoredResult` describing an object already in ``store`` (size -1 if it
    is not local)."""
    try:
        size = os.stat(store.object_path(ref)).st_size
    except OSError:
        size = -1
    cls = type(value)
    name = type_name or (
        cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )
    refs = () if hasattr(value, "dtype") else scan_refs(value)
    return StoredResult(ref, size, None, name, refs)


def is_indexed(store: Store, sha1: str) -> bool:
    """Whether the reverse index already names a producer of object ``sha1``."""
    return lookup(action_cache(store).refs, sha1)[0] is not None


def write_provenance(
    store: Store,
    *,
    key: str,
    function: str,
    version: str | None,
    code: str,
    inputs: Mapping[str, Any],
    result: StoredResult,
    duration: float,
    created: float,
    producer: dict[str, Any],
    overrides: Mapping[str, dict[str, Any]] | None = None,
) -> Ref:
    """Build, store and index the record of one result; returns the record's Ref.

    Inputs without a content token (see :mod:`kachery_flows.tokens`) are listed by type
    with a null token. ``overrides`` adds fields to an input's description.
    """
    names: list[str] = []
    encodings: list[bytes] = []
    untokened: dict[str, dict[str, Any]] = {}
    for name in sorted(inputs):
        try:
            encodings.append(argument_encoding(inputs[name], "input", name, function))
        except UnhashableArgumentError:
            cls = type(inputs[name])
            untokened[name] = {"type": f"{cls.__module__}.{cls.__qualname__}", "token": None}
            continue
        names.append(name)
    record = build_record(
        key=key,
        function=function,
        version=version,
        code=code,
        closure=None,
        names=names,
        values=dict(inputs),
        encodings=encodings,
        ignored=(),
        result=result,
        duration=duration,
        created=created,
    )
    record["inputs"].update(untokened)
    for name, extra in (overrides or {}).items():
        record["inputs"].setdefault(name, {}).update(extra)
        _add_refs(record, extra.get("refs", ()))
    record["producer"] = producer
    ref = store.put_json(record)
    note_producer(store, action_cache(store).refs, result.ref.sha1, ref.sha1)
    return ref


def _add_refs(record: dict[str, Any], uris: Sequence[str]) -> None:
    for uri in uris:
        if uri not in record["input_refs"]:
            record["input_refs"].append(uri)
