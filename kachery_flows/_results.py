"""How memoized results are written to the store and read back on a hit.

=====================================  ========  =============================================
result                                 codec     on a hit
=====================================  ========  =============================================
``np.ndarray`` (non-object dtype)      npy       memory-mapped read-only, token registered
``bytes``                              bytes     the bytes
JSON that round-trips exactly          json      the value (kachery-canonical JSON)
anything else                          pkl       cloudpickle (protocol 4), loaded with pickle
=====================================  ========  =============================================

"Round-trips exactly" means only ``str``, ``int``, finite ``float``, ``bool``, ``None``,
lists and dicts with ``str`` keys already in sorted order (canonical JSON sorts keys):
tuples, int keys, ``float`` subclasses such as ``np.float64`` and unsorted dicts go
through cloudpickle, so a hit always returns a value equal to (and of the same types as)
the first call's.

Trust: :class:`kachery_flows.records.ActionCache` only asks for a cloudpickled result
whose bytes this store pickled itself, unless the store trusts its zone's pickles; those
bytes are then always re-hashed (whatever their size) before they are unpickled.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import codecs
from ._background import BackgroundThread
from .errors import KacheryError, ObjectNotFoundError
from .hashing import HashingWriter
from .store import Store
from .tokens import array_token, register_array_token
from .uri import Ref, parse_uri

__all__ = [
    "MISS",
    "StoredResult",
    "load_result",
    "load_value",
    "object_path",
    "put_value",
    "result_exists",
    "scan_refs",
    "store_result",
]

#: json/bytes/pkl results up to this size, and npy results up to :data:`VERIFY_NPY_LIMIT`,
#: are re-hashed on every hit (a flipped bit is a miss, not a wrong value); larger ones are
#: checked by size (truncation, appended bytes), and fully by ``kachery-flows verify``.
VERIFY_LIMIT = 8 << 20
#: Memory-mapped results are re-hashed only when small: hashing defeats lazy loading.
VERIFY_NPY_LIMIT = 64 << 10
_SUFFIX = {"npy": ".npy", "json": ".json", "pkl": ".pkl", "bytes": ""}
_MAX_SCAN = 10_000


class _Miss:
    def __repr__(self) -> str:
        return "MISS"


#: Returned by :func:`load_result` when the result is missing or corrupt.
MISS: Any = _Miss()


@dataclass(frozen=True)
class StoredResult:
    """What :func:`store_result` wrote."""

    ref: Ref
    size: int
    array_token: bytes | None
    type_name: str
    refs: tuple[str, ...]


def _type_name(value: Any) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}" if cls.__module__ != "builtins" else cls.__name__


def _is_npy_array(value: Any) -> bool:
    np = sys.modules.get("numpy")
    if np is None or type(value) not in (np.ndarray, np.memmap):
        return False
    return not value.dtype.hasobject and getattr(type(value.dtype), "_legacy", True)


def _json_exact(value: Any, depth: int = 0) -> bool:
    if depth > 100:
        return False
    cls = type(value)
    if cls is str or cls is bool or value is None:
        return True
    if cls is int:
        # json writes ints with str(), limited to sys.get_int_max_str_digits() digits
        # (4300 by default, in the writer and in any reader): larger ones are pickled.
        limit: int = getattr(sys, "get_int_max_str_digits", lambda: 0)()
        digits = min(limit, 4300) if limit else 4300
        return bool(value.bit_length() <= digits * 3.32)  # then abs(value) < 10**digits
    if cls is float:
        return math.isfinite(value)
    if cls is list:
        return all(_json_exact(v, depth + 1) for v in value)
    if cls is dict:
        keys = list(value)
        return (
            all(type(k) is str for k in keys)
            and keys == sorted(keys)
            and all(_json_exact(v, depth + 1) for v in value.values())
        )
    return False


def scan_refs(value: Any) -> tuple[str, ...]:
    """URIs inside a result (Refs and ``sha1://`` strings in containers), for provenance
    and so that garbage collection keeps what a live result points to."""
    found: dict[str, None] = {}
    stack = [value]
    seen = 0
    while stack and seen < _MAX_SCAN:
        item = stack.pop()
        seen += 1
        if isinstance(item, Ref):
            found[f"sha1://{item.sha1}"] = None
        elif isinstance(item, str):
            if item.startswith(("sha1://", "kachery:")):
                with suppress(ValueError):
                    found[f"sha1://{parse_uri(item).sha1}"] = None
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
    return tuple(found)


_tokens = BackgroundThread("kachery-token")


def _encoder(value: Any) -> tuple[str, Callable[[HashingWriter], object]]:
    """The codec that suits ``value`` (see the module docs) and a writer of its bytes."""
    if _is_npy_array(value):
        array = value

        def write_npy(w: HashingWriter) -> None:
            codecs.write_npy(w, array)

        return "npy", write_npy
    if type(value) is bytes:
        codec, data = "bytes", value
    elif _json_exact(value):
        codec, data = "json", codecs.encode_json(value)
    else:
        import cloudpickle

        codec, data = "pkl", cloudpickle.dumps(value, protocol=codecs.PICKLE_PROTOCOL)

    def write(w: HashingWriter) -> None:
        w.write(data)

    return codec, write


def store_result(store: Store, value: Any, stem: str) -> StoredResult:
    """Write ``value`` with the codec that suits it; return its Ref and metadata."""
    codec, write = _encoder(value)
    # The content token of an array is hashed on another core while the array is written.
    pending = _tokens.submit(array_token, value) if codec == "npy" else None
    try:
        ref = store._put_cache_object(write, codec, label=stem + _SUFFIX[codec])
    finally:
        token = pending.result() if pending is not None else None
    size = store.object_path(ref).stat().st_size
    refs = () if codec in ("npy", "bytes") else scan_refs(value)
    return StoredResult(ref, size, token, _type_name(value), refs)


def put_value(store: Store, value: Any, stem: str) -> Ref:
    """Store ``value`` with the codec that suits it as an ordinary object: like the
    ``store_*`` functions, it is uploaded to the zone and never garbage-collected.

    The label is ``stem`` plus the codec's suffix (``.npy``, ``.json``, ``.pkl``; none for
    bytes), so :meth:`Ref.guess_codec` recovers the codec from the URI alone.
    """
    codec, write = _encoder(value)
    return store._put(write, stem + _SUFFIX[codec], codec, local=False)


def _quarantine(store: Store, path: str) -> None:
    try:
        store._quarantine(Path(path))
    except (KacheryError, OSError):
        with suppress(OSError):
            os.unlink(path)


def _fetch(store: Store, sha1: str) -> str | None:
    """Fetch a result only the zone has (and mark it as a cache object); None if nobody
    has it."""
    if store.zone is None:
        return None
    try:
        path = store.load_file(Ref(sha1))
    except ObjectNotFoundError:
        return None
    store._mark_cache_object(sha1, created=True)
    return path


_O_RDONLY = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


def _read(path: str, size: int) -> bytes:
    """Up to ``size + 1`` bytes of a file: a longer or shorter object shows as a bad length."""
    fd = os.open(path, _O_RDONLY)
    try:
        data = os.read(fd, size + 1)
        if len(data) < size:
            chunks = [data]
            while True:
                more = os.read(fd, size + 1 - sum(map(len, chunks)))
                if not more:
                    break
                chunks.append(more)
            data = b"".join(chunks)
        return data
    finally:
        os.close(fd)


def object_path(root: str, sha1: str) -> str:
    """``<root>/sha1/aa/bb/cc/<sha1>`` as a string (cheaper than pathlib on hot paths)."""
    return f"{root}/sha1/{sha1[0:2]}/{sha1[2:4]}/{sha1[4:6]}/{sha1}"


def load_result(
    store: Store, root: str, sha1: str, codec: str, size: int, token: bytes | None
) -> Any:
    """Load a memoized result, or :data:`MISS` if it is missing or corrupt.

    ``root`` is ``str(store.root)``. A corrupt local object is moved to the quarantine so
    the recomputed bytes can take its place.
    """
    path = object_path(root, sha1)
    if codec == "npy":
        try:
            actual = os.stat(path).st_size
        except FileNotFoundError:
            fetched = _fetch(store, sha1)
            if fetched is None:
                return MISS
            path, actual = fetched, os.stat(fetched).st_size
        if actual != size or (
            size <= VERIFY_NPY_LIMIT and hashlib.sha1(_read(path, size)).hexdigest() != sha1
        ):
            _quarantine(store, path)
            return MISS
        import numpy as np

        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except Exception:  # a header that does not fit the file, whatever numpy raises
            _quarantine(store, path)
            return MISS
        if token is not None:
            register_array_token(array, token)
        return array
    try:
        data = _read(path, size)
    except FileNotFoundError:
        fetched = _fetch(store, sha1)
        if fetched is None:
            return MISS
        path = fetched
        data = _read(path, size)
    # A pickle is always re-hashed: it is trusted because this store wrote those bytes.
    verify = size <= VERIFY_LIMIT or codec == "pkl"
    if len(data) != size or (verify and hashlib.sha1(data).hexdigest() != sha1):
        _quarantine(store, path)
        return MISS
    try:
        if codec == "json":
            return json.loads(data)
        if codec == "bytes":
            return data
        import pickle

        return pickle.loads(data)
    except Exception:
        # Intact bytes that no longer load (e.g. a class changed): recompute.
        if hashlib.sha1(data).hexdigest() != sha1:
            _quarantine(store, path)
        return MISS


def load_value(store: Store, ref: Ref, codec: str) -> Any:
    """Load an object written by :func:`put_value` (fetched and verified from the zone if
    it is not local), or :data:`MISS` if it is missing everywhere or corrupt.

    The checks are :func:`load_result`'s, against the local object's size.
    """
    root = str(store.root)
    path = object_path(root, ref.sha1)
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        try:
            size = os.stat(store.download(ref)).st_size
        except ObjectNotFoundError:
            return MISS
    return load_result(store, root, ref.sha1, codec, size, None)


def result_exists(store: Store, root: str, sha1: str, size: int) -> bool:
    """Whether the result object is present (locally with the right size, or in the zone)."""
    path = object_path(root, sha1)
    try:
        if os.stat(path).st_size == size:
            return True
        _quarantine(store, path)
    except FileNotFoundError:
        pass
    return store.zone is not None and store.zone.has(sha1)
