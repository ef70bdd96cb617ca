"""Provenance of Dask checkpoints: :func:`~kachery_flows.dask.to_kachery` calls
:func:`note_checkpoint` once the manifest is stored.

The record's one input, ``array``, is the dask array: its graph name (the token Dask
derives from the graph), shape, dtype, the names of its graph layers (what computed it)
and, as input refs, the manifests of the arrays it was read from with
:func:`~kachery_flows.dask.from_kachery` (their layers are named
``from-kachery-<sha1>``). The first checkpoint of an array is the one recorded.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any

import dask.array as da

from .._lineage_records import is_indexed, stored_result, write_provenance
from ..errors import KacheryError
from ..store import Store, get_default_store
from ..uri import Ref
from ._manifest import read_manifest

__all__ = ["note_checkpoint"]

_SOURCE = re.compile(r"from-kachery-([0-9a-f]{40})")
_TOKEN = re.compile(r"-[0-9a-f]{32}$")
_MAX_LAYERS = 50


def _layers(arr: da.Array) -> tuple[list[str], list[str]]:
    names, sources = [], []
    for name in arr.dask.layers:
        match = _SOURCE.fullmatch(str(name))
        if match is not None:
            sources.append(f"sha1://{match.group(1)}")
        short = _TOKEN.sub("", str(name))
        if short not in names:
            names.append(short)
    return names[:_MAX_LAYERS], sorted(sources)


def note_checkpoint(arr: da.Array, ref: Ref, store: Store | None, started: float) -> None:
    """Write the provenance record of the manifest ``ref`` that stores ``arr``, unless a
    producer of that manifest is already recorded (storing an equal array again, chunked
    the same way, writes no new object)."""
    target = store if store is not None else get_default_store()
    if is_indexed(target, ref.sha1):
        return
    try:
        chunks: Any = [r.uri for r in read_manifest(ref, store=target).chunk_refs]
    except KacheryError:
        chunks = []
    layers, sources = _layers(arr)
    shape = [None if math.isnan(n) else int(n) for n in arr.shape]
    write_provenance(
        target,
        key="",
        function="kachery_flows.dask.to_kachery",
        version=None,
        code=arr.name,
        inputs={"array": sources},
        result=stored_result(target, ref, chunks, "kachery_flows.dask.ArrayManifest"),
        duration=max(time.time() - started, 0.0),
        created=started,
        producer={"tool": "dask", "graph": arr.name},
        overrides={
            "array": {
                "type": "dask.array.Array",
                "graph": arr.name,
                "shape": shape,
                "dtype": str(arr.dtype),
                "layers": layers,
                "refs": sources,
            }
        },
    )
