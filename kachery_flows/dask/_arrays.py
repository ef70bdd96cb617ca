"""Checkpoint a whole dask array in the store (:func:`to_kachery`) and open it lazily again
(:func:`from_kachery`).

Both directions run on the workers: each chunk is written, and later memory-mapped, by the
worker that holds or needs it, through that worker's store (see
:class:`~kachery_flows.dask.KacheryPlugin`). The client only ever handles the manifest
and the chunks' URIs.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any, cast

import dask.array as da
import numpy as np
from dask.base import compute
from dask.delayed import delayed
from dask.highlevelgraph import HighLevelGraph

from ..codecs import npy_problem
from ..errors import ManifestError
from ..store import Store, get_default_store
from ..uri import Ref, parse_uri
from ._lineage import note_checkpoint
from ._manifest import ArrayManifest, read_manifest

__all__ = ["DEFAULT_LABEL", "from_kachery", "to_kachery"]

#: Label of a manifest's URI when ``to_kachery`` is given none.
DEFAULT_LABEL = "dask-array.json"

_ChunkInfo = tuple[str, tuple[int, ...]]


def to_kachery(arr: da.Array, *, label: str | None = None, store: Store | None = None) -> Ref:
    """Store every chunk of a dask array, then a manifest naming them; return its Ref.

    Each chunk is computed and stored as ``.npy`` by the worker that computes it (in
    parallel; no chunk bytes pass through the client or the scheduler), then one task
    stores the JSON manifest (shape, dtype, chunks, chunk URIs; see
    :class:`~kachery_flows.dask.ArrayManifest`). The returned :class:`~kachery_flows.Ref`
    (codec ``json``) names the whole array: give it to :func:`from_kachery` on any client
    that shares the store or its zone. Storing an equal array with equal chunks again
    writes no new object.

    Runs on the current Dask scheduler: the distributed client if one is active, else the
    local one. Chunks of unknown size (``nan`` in ``arr.chunks``) are fine: the manifest
    records the sizes the chunks turned out to have.

    Parameters
    ----------
    arr:
        The dask array.
    label:
        Label of the returned URI (informational; default ``"dask-array.json"``).
    store:
        Store the workers write to; default: each worker's default store (configure it
        with :class:`~kachery_flows.dask.KacheryPlugin`).

    Raises
    ------
    TypeError
        For object dtypes (and other dtypes ``.npy`` stores only with pickle): convert the
        array first, e.g. ``arr.astype("U20")``.
    ManifestError
        If a computed chunk's dtype or shape differs from what the dask array declares
        (e.g. a ``map_blocks`` call with a wrong ``dtype=``).
    """
    if not isinstance(arr, da.Array):
        raise TypeError(f"to_kachery expects a dask.array.Array, not {type(arr).__name__}")
    problem = npy_problem(arr.dtype)
    if problem is not None:
        raise TypeError(f"cannot store this dask array with to_kachery: {problem}")
    # Fresh keys on every call: storing is a side effect that must run even if an equal
    # call's results are still held by the cluster (the store may have changed since).
    token = uuid.uuid4().hex
    name = f"to-kachery-chunk-{token}"
    blocks = arr.to_delayed().ravel()  # type: ignore[no-untyped-call]
    stored = [
        delayed(_store_chunk)(
            block,
            _declared_shape(arr.chunks, index),
            arr.dtype,
            store,
            dask_key_name=(name, i),
        )
        for i, (index, block) in enumerate(zip(np.ndindex(*arr.numblocks), blocks, strict=True))
    ]
    manifest = delayed(_store_manifest)(
        stored,
        arr.numblocks,
        arr.dtype,
        label,
        store,
        dask_key_name=f"to-kachery-manifest-{token}",
    )
    started = time.time()
    (ref,) = compute(manifest)  # type: ignore[no-untyped-call]
    note_checkpoint(arr, ref, store, started)
    return cast(Ref, ref)


def _declared_shape(
    chunks: tuple[tuple[float, ...], ...], index: tuple[int, ...]
) -> tuple[int | None, ...]:
    return tuple(
        None if math.isnan(chunks[axis][i]) else int(chunks[axis][i])
        for axis, i in enumerate(index)
    )


def _as_numpy(block: Any) -> np.ndarray[Any, Any]:
    if isinstance(block, np.generic):
        return np.asarray(block)
    if type(block) in (np.ndarray, np.memmap):
        return block  # type: ignore[no-any-return]
    raise ManifestError(
        f"to_kachery stores numpy chunks, but a chunk is a {type(block).__module__}."
        f"{type(block).__qualname__} (its mask, format or device would be lost); convert "
        "the array's chunks to plain numpy first, e.g. arr.map_blocks(np.asarray)"
    )


def _store_chunk(
    block: Any, shape: tuple[int | None, ...], dtype: np.dtype[Any], store: Store | None
) -> _ChunkInfo:
    """Worker side: check one computed block against the array, store it as npy."""
    chunk = _as_numpy(block)
    if chunk.dtype != dtype:
        raise ManifestError(
            f"a chunk of the dask array computed to dtype {chunk.dtype}, but the array "
            f"declares {dtype}; fix the dtype= given to map_blocks (or similar), or call "
            ".astype() before to_kachery"
        )
    if len(chunk.shape) != len(shape) or any(
        want is not None and want != got for want, got in zip(shape, chunk.shape, strict=False)
    ):
        declared = tuple("nan" if s is None else s for s in shape)
        raise ManifestError(
            f"a chunk of the dask array computed to shape {chunk.shape}, but the array's "
            f"chunks declare {declared}; fix the chunks= given to map_blocks (or similar)"
        )
    target = store if store is not None else get_default_store()
    return target.put_npy(chunk).sha1, chunk.shape


def _store_manifest(
    infos: list[_ChunkInfo],
    numblocks: tuple[int, ...],
    dtype: np.dtype[Any],
    label: str | None,
    store: Store | None,
) -> Ref:
    """Worker side: build the manifest from the stored chunks and store it."""
    shapes = [shape for _, shape in infos]
    chunks = _grid_chunks(shapes, numblocks)
    manifest = ArrayManifest(
        shape=tuple(sum(c) for c in chunks),
        dtype=dtype,
        chunks=chunks,
        chunk_refs=tuple(Ref(sha1) for sha1, _ in infos),
    )
    target = store if store is not None else get_default_store()
    return target.put_json(manifest.to_json(), label if label is not None else DEFAULT_LABEL)


def _grid_chunks(
    shapes: list[tuple[int, ...]], numblocks: tuple[int, ...]
) -> tuple[tuple[int, ...], ...]:
    """The chunks of each axis, read off the blocks' actual shapes (which must form a grid)."""
    grid = np.empty(numblocks, dtype=object)
    for index, shape in zip(np.ndindex(*numblocks), shapes, strict=True):
        grid[index] = shape
    chunks = tuple(
        tuple(
            grid[tuple(i if a == axis else 0 for a in range(len(numblocks)))][axis]
            for i in range(numblocks[axis])
        )
        for axis in range(len(numblocks))
    )
    for index in np.ndindex(*numblocks):
        expected = tuple(chunks[axis][i] for axis, i in enumerate(index))
        if grid[index] != expected:
            raise ManifestError(
                f"block {index} of the dask array computed to shape {grid[index]}, but its "
                f"row and column neighbours imply {expected}: the chunks do not form a grid"
            )
    return chunks


def from_kachery(ref: str | Ref, *, store: Store | None = None) -> da.Array:
    """Open an array stored with :func:`to_kachery` as a lazy, chunk-aligned dask array.

    Only the manifest is read here (through ``store``, default: this process's default
    store) and validated. Each chunk is memory-mapped read-only, when a task needs it, on
    the worker that runs the task, through that worker's store (which fetches it from the
    zone and verifies its hash if the worker does not have it). The graph is named after
    the manifest's hash (``from-kachery-<sha1>``), so every client builds the same graph
    and Dask shares the work.

    Parameters
    ----------
    ref:
        The URI or :class:`~kachery_flows.Ref` returned by :func:`to_kachery`.
    store:
        Store to read the manifest and (in the tasks) the chunks from; default: the
        client's default store for the manifest and each worker's default store for the
        chunks.

    Raises
    ------
    ManifestError
        If the manifest is malformed (now), or a chunk does not have the shape or dtype
        the manifest says (when the chunk is computed).
    ObjectNotFoundError
        If the manifest (now) or a chunk (when computed) is in neither store nor zone.

    Examples
    --------
    Without a distributed client the local scheduler stores and reads the chunks:

    >>> import dask.array as da
    >>> from kachery_flows.dask import from_kachery, to_kachery
    >>> ref = to_kachery(da.arange(10.0, chunks=4), label="ramp")
    >>> str(ref)
    'sha1://...?label=ramp'
    >>> again = from_kachery(ref)
    >>> again.chunks, float(again.sum().compute())
    (((4, 4, 2),), 45.0)
    """
    ref = parse_uri(ref)
    manifest = read_manifest(ref, store=store)
    name = f"from-kachery-{ref.sha1}"
    dsk: dict[Any, Any] = {
        (name, *index): (_load_chunk, chunk.sha1, shape, manifest.dtype, store, ref.uri)
        for index, shape, chunk in manifest.blocks()
    }
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=())
    return da.Array(  # type: ignore[no-untyped-call]
        graph, name, manifest.chunks, dtype=manifest.dtype
    )


def _load_chunk(
    sha1: str,
    shape: tuple[int, ...],
    dtype: np.dtype[Any],
    store: Store | None,
    manifest_uri: str,
) -> np.ndarray[Any, Any]:
    """Worker side: memory-map one chunk and check it against the manifest."""
    target = store if store is not None else get_default_store()
    chunk: np.ndarray[Any, Any] = target.load_npy(Ref(sha1), mmap_mode="r")
    if chunk.shape != shape or chunk.dtype != dtype:
        raise ManifestError(
            f"chunk sha1://{sha1} of the array {manifest_uri} has shape {chunk.shape} and "
            f"dtype {chunk.dtype}, but the manifest says {shape} and {dtype}: the manifest "
            "does not describe its chunks; store the array again with to_kachery",
            uri=manifest_uri,
        )
    return chunk
