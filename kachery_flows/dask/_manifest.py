"""The JSON manifest that names a whole chunked array.

::

    {"schema": "kachery-flows-dask-array-1",
     "shape": [1000, 64],
     "dtype": "<f4",                       # numpy's .npy descr (structured dtypes: a list)
     "chunks": [[500, 500], [64]],
     "chunk_uris": ["sha1://...", "sha1://..."]}   # one .npy per block, C block order

The manifest is stored with the store's JSON codec (kachery-canonical JSON), so equal
arrays chunked the same way have the same manifest and the same URI. Reading one is
strict: anything malformed raises :class:`~kachery_flows.errors.ManifestError` naming the
manifest's URI, before any chunk is touched.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..codecs import npy_problem
from ..errors import DecodeError, InvalidURIError, ManifestError
from ..store import Store, get_default_store
from ..uri import Ref, parse_uri

__all__ = ["MANIFEST_SCHEMA", "ArrayManifest", "read_manifest"]

#: Schema tag of array manifests; a new layout gets a new tag.
MANIFEST_SCHEMA = "kachery-flows-dask-array-1"
_SCHEMA_FAMILY = "kachery-flows-dask-array-"
_KEYS = frozenset({"schema", "shape", "dtype", "chunks", "chunk_uris"})
_MAX_NDIM = 64  # numpy's limit


@dataclass(frozen=True)
class ArrayManifest:
    """What a stored chunked array is: its shape, dtype, chunks, and one Ref per block.

    ``chunk_refs`` lists the blocks in C order (the last block index varies fastest), the
    order of ``np.ndindex(*numblocks)``.
    """

    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    chunks: tuple[tuple[int, ...], ...]
    chunk_refs: tuple[Ref, ...]

    @property
    def numblocks(self) -> tuple[int, ...]:
        """Number of blocks along each axis."""
        return tuple(len(c) for c in self.chunks)

    def blocks(self) -> Iterator[tuple[tuple[int, ...], tuple[int, ...], Ref]]:
        """``(block index, block shape, chunk Ref)`` for every block, in C order."""
        for index, ref in zip(np.ndindex(*self.numblocks), self.chunk_refs, strict=True):
            shape = tuple(self.chunks[axis][i] for axis, i in enumerate(index))
            yield index, shape, ref

    def to_json(self) -> dict[str, Any]:
        """The manifest as a JSON-able dict (what is stored)."""
        return {
            "schema": MANIFEST_SCHEMA,
            "shape": list(self.shape),
            "dtype": np.lib.format.dtype_to_descr(self.dtype),
            "chunks": [list(c) for c in self.chunks],
            "chunk_uris": [f"sha1://{ref.sha1}" for ref in self.chunk_refs],
        }

    @classmethod
    def from_json(cls, obj: Any, uri: str = "the manifest") -> ArrayManifest:
        """Validate a decoded manifest strictly; :class:`ManifestError` names ``uri``."""

        def bad(why: str) -> ManifestError:
            return ManifestError(
                f"{uri} is not a valid kachery-flows array manifest: {why}. Array manifests "
                "are written by kachery_flows.dask.to_kachery; store the array again to get "
                "a good one.",
                uri=uri,
            )

        if not isinstance(obj, dict):
            raise bad(f"expected a JSON object, found {type(obj).__name__}")
        schema = obj.get("schema")
        if schema != MANIFEST_SCHEMA:
            if isinstance(schema, str) and schema.startswith(_SCHEMA_FAMILY):
                raise ManifestError(
                    f"{uri} is an array manifest of schema {schema!r}, which this version of "
                    f"kachery-flows does not read (it reads {MANIFEST_SCHEMA!r}); upgrade "
                    "kachery-flows",
                    uri=uri,
                )
            raise bad(f"schema is {schema!r}, expected {MANIFEST_SCHEMA!r}")
        if set(obj) != _KEYS:
            missing, extra = sorted(_KEYS - set(obj)), sorted(set(obj) - _KEYS)
            raise bad(f"keys missing: {missing}, unexpected keys: {extra}")
        shape = _int_list(obj["shape"], "shape", bad)
        if len(shape) > _MAX_NDIM:
            raise bad(f"{len(shape)} dimensions (numpy allows {_MAX_NDIM})")
        chunks_raw = obj["chunks"]
        if not isinstance(chunks_raw, list) or len(chunks_raw) != len(shape):
            raise bad(f"chunks must be a list of {len(shape)} lists (one per axis)")
        chunks = []
        for axis, (size, raw) in enumerate(zip(shape, chunks_raw, strict=True)):
            sizes = _int_list(raw, f"chunks[{axis}]", bad)
            if not sizes or sum(sizes) != size:
                raise bad(
                    f"the chunks of axis {axis} {sizes} do not add up to its size {size} "
                    "(an empty axis has one chunk of size 0)"
                )
            chunks.append(tuple(sizes))
        dtype = _dtype(obj["dtype"], bad)
        uris = obj["chunk_uris"]
        expected = math.prod(len(c) for c in chunks)
        if not isinstance(uris, list) or len(uris) != expected:
            count = len(uris) if isinstance(uris, list) else type(uris).__name__
            raise bad(f"chunk_uris must list {expected} URIs (one per block), found {count}")
        refs = []
        for i, item in enumerate(uris):
            if not isinstance(item, str):
                raise bad(f"chunk_uris[{i}] is {type(item).__name__}, not a URI string")
            try:
                refs.append(parse_uri(item))
            except InvalidURIError as exc:
                raise bad(f"chunk_uris[{i}]: {exc}") from None
        return cls(tuple(shape), dtype, tuple(chunks), tuple(refs))


_Bad = Callable[[str], ManifestError]


def _int_list(value: Any, what: str, bad: _Bad) -> list[int]:
    if not isinstance(value, list) or not all(type(v) is int and v >= 0 for v in value):
        raise bad(f"{what} must be a list of non-negative integers, found {value!r:.200}")
    return value


def _dtype(descr: Any, bad: _Bad) -> np.dtype[Any]:
    try:
        dtype = np.lib.format.descr_to_dtype(descr)
    except Exception as exc:
        raise bad(f"dtype {descr!r:.200} is not a numpy .npy dtype description ({exc})") from None
    problem = npy_problem(dtype)
    if problem is not None:
        raise bad(problem)
    return dtype


def read_manifest(ref: str | Ref, *, store: Store | None = None) -> ArrayManifest:
    """Load and validate the manifest a :func:`~kachery_flows.dask.to_kachery` URI names.

    Raises :class:`~kachery_flows.errors.ManifestError` if the object is not a valid
    manifest, and :class:`~kachery_flows.errors.ObjectNotFoundError` if it is nowhere.
    """
    ref = parse_uri(ref)
    target = store if store is not None else get_default_store()
    try:
        obj = target.load_json(ref)
    except DecodeError as exc:
        raise ManifestError(
            f"{ref.uri} is not an array manifest (not JSON: {exc}). For a single stored "
            ".npy use kachery_flows.load_npy(uri, mmap_mode='r').",
            uri=ref.uri,
        ) from None
    return ArrayManifest.from_json(obj, ref.uri)
