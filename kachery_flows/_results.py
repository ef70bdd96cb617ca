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

Trust: :class:`kachery_flows.action_cache.ActionCache` only asks for a cloudpickled result
whose bytes this store pickled itself, unless the store trusts its zone's pickles; those
bytes are then always re-hashed (whatever their size) before they are unpickled.
"""

from __future__ import annotations

import errno
import hashlib
import math
import os
import stat
import sys
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _marks, codecs
from ._background import BackgroundThread
from ._layout import object_key
from ._safeopen import READ_FLAGS, read_fd
from .errors import (
    CorruptObjectError,
    DecodeError,
    KacheryError,
    ObjectNotFoundError,
)
from .hashing import HashingWriter, sha1_of_file
from .store import Store
from .tokens import array_token, register_array_token
from .uri import Ref, parse_uri

__all__ = [
    "MISS",
    "StoredResult",
    "load_result",
    "load_value",
    "inline_result",
    "put_value",
    "result_exists",
    "scan_refs",
    "small_encoding",
    "store_result",
]

#: json/bytes/pkl results up to this size, and npy results up to :data:`VERIFY_NPY_LIMIT`,
#: are re-hashed on every hit (a flipped bit is a miss, not a wrong value); larger ones are
#: checked by size (truncation, appended bytes), and fully by ``kachery-flows verify``.
VERIFY_LIMIT = 8 << 20
#: Memory-mapped results are re-hashed only when small: hashing defeats lazy loading.
VERIFY_NPY_LIMIT = 64 << 10
#: Results smaller than this are read without an ``fstat`` first (a bounded allocation).
_DIRECT_READ = 1 << 20
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
    if codecs.fits_npy(value):
        return "npy", lambda w: codecs.write_npy(w, value)
    codec, data = _bytes_encoding(value)
    return codec, lambda w: w.write(data)


def _bytes_encoding(value: Any) -> tuple[str, bytes]:
    """The codec and bytes of a value that is not an array (see the module docs)."""
    if type(value) is bytes:
        return "bytes", value
    if _json_exact(value):
        return "json", codecs.encode_json(value)
    import cloudpickle

    return "pkl", cloudpickle.dumps(value, protocol=codecs.PICKLE_PROTOCOL)


def small_encoding(value: Any, limit: int) -> tuple[str, bytes] | None:
    """``(codec, bytes)`` of a ``json``, ``bytes`` or ``pkl`` result of at most ``limit``
    bytes (the codec :func:`store_result` would choose), which the action cache may keep
    inline in its entry; None for arrays and anything larger."""
    if codecs.fits_npy(value):
        return None
    codec, data = _bytes_encoding(value)
    return (codec, data) if len(data) <= limit else None


def inline_result(value: Any, codec: str, data: bytes, stem: str) -> StoredResult:
    """The :class:`StoredResult` of bytes kept inline (not written as an object yet)."""
    sha1 = hashlib.sha1(data).hexdigest()
    refs = () if codec == "bytes" else scan_refs(value)
    return StoredResult(
        Ref(sha1, stem + codecs.suffix(codec), codec), len(data), None, _type_name(value), refs
    )


def store_result(store: Store, value: Any, stem: str) -> StoredResult:
    """Write ``value`` with the codec that suits it; return its Ref and metadata."""
    codec, write = _encoder(value)
    # The content token of an array is hashed on another core while the array is written.
    pending = _tokens.submit(array_token, value) if codec == "npy" else None
    try:
        ref = store.write_object(write, codec, stem + codecs.suffix(codec), collectable=True)
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
    return store.write_object(write, codec, stem + codecs.suffix(codec))


def _quarantine(store: Store, path: str) -> None:
    try:
        store.quarantine(Path(path))
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
    _marks.mark(store.root, sha1, created=True, group_shared=store.group_shared)
    return path


def _read(path: str, size: int) -> bytes | None:
    """The bytes of the file ``path`` if it holds exactly ``size`` bytes, else None.

    Opened with ``O_NOFOLLOW | O_NONBLOCK``: a symlink, FIFO or directory is None, never
    a hang. A size the entry got wrong is never allocated: small sizes are read at once
    (``size + 1`` bytes shows a longer file), larger ones only after ``fstat`` confirms
    them. FileNotFoundError if the file is absent."""
    try:
        fd = os.open(path, READ_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None
        raise
    try:
        if size < _DIRECT_READ:
            data = os.read(fd, size + 1)
            if 0 < len(data) < size:  # a short read: the rest, as pipes and NFS may need
                data += read_fd(fd, size + 1 - len(data))
        else:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size != size:
                return None
            data = read_fd(fd, size)
    except (IsADirectoryError, BlockingIOError):
        return None
    finally:
        os.close(fd)
    return data if len(data) == size else None


def _mismatch(store: Store, path: str, sha1: str) -> Any:
    """An entry disagrees with the object it names: the entry is a hint, the object is
    the truth. The object is quarantined only if its own bytes fail their hash; either
    way the hit is a miss."""
    try:
        regular = stat.S_ISREG(os.lstat(path).st_mode)
        intact = not regular or sha1_of_file(Path(path)) == sha1
    except OSError:
        intact = True
    if not intact:
        _quarantine(store, path)
    return MISS


def load_result(
    store: Store,
    root: str,
    sha1: str,
    codec: str,
    size: int,
    token: bytes | None,
    trusts_pickle: Callable[[str], bool],
) -> Any:
    """Load a memoized result, or :data:`MISS` if it is missing, corrupt, or not the size
    its entry says.

    ``root`` is ``str(store.root)``. Only an object whose own bytes fail their hash is
    moved to the quarantine. Intact bytes that do not decode with ``codec`` raise
    :class:`DecodeError` (a codec outside the closed set ``npy``/``json``/``bytes``/``pkl``
    too, before anything is read); a pickle goes through :func:`codecs.unpickle` with the
    trust rule ``trusts_pickle`` (the action cache's; :class:`UnsafePickleError`).
    """
    if codec not in codecs.RESULT_CODECS:
        raise DecodeError(
            f"sha1://{sha1}: unknown result codec {codec!r}; expected one of "
            f"{sorted(codecs.RESULT_CODECS)}"
        )
    path = f"{root}/{object_key(sha1)}"
    if codec == "npy":
        return _load_npy(store, path, sha1, size, token)
    try:
        data = _read(path, size)
    except FileNotFoundError:
        fetched = _fetch(store, sha1)
        if fetched is None:
            return MISS
        path = fetched
        data = _read(path, size)
    if data is None:
        return _mismatch(store, path, sha1)
    # A pickle is always re-hashed (in unpickle): it is trusted for these exact bytes.
    if codec != "pkl" and size <= VERIFY_LIMIT and hashlib.sha1(data).hexdigest() != sha1:
        _quarantine(store, path)
        return MISS
    where = f"sha1://{sha1}"
    if codec == "bytes":
        return data
    if codec == "json":
        return codecs.decode_json(data, where)
    try:
        return codecs.unpickle(data, sha1, where, trusts_pickle)
    except CorruptObjectError:
        _quarantine(store, path)
        return MISS


def _load_npy(store: Store, path: str, sha1: str, size: int, token: bytes | None) -> Any:
    try:
        actual = os.lstat(path)
    except FileNotFoundError:
        fetched = _fetch(store, sha1)
        if fetched is None:
            return MISS
        path, actual = fetched, os.lstat(fetched)
    if not stat.S_ISREG(actual.st_mode) or actual.st_size != size:
        return _mismatch(store, path, sha1)
    if size <= VERIFY_NPY_LIMIT:
        data = _read(path, size)
        if data is None:
            return _mismatch(store, path, sha1)
        if hashlib.sha1(data).hexdigest() != sha1:
            _quarantine(store, path)
            return MISS
    import numpy as np

    try:
        # memory-mapped, so a header announcing more than the file holds allocates nothing
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # whatever numpy raises for a header that does not fit
        raise DecodeError(f"sha1://{sha1} is not a loadable .npy file: {exc}") from exc
    if token is not None:
        register_array_token(array, token)
    return array


def load_value(
    store: Store, ref: Ref, codec: str, *, trusts_pickle: Callable[[str], bool] | None = None
) -> Any:
    """Load an object written by :func:`put_value` (fetched and verified from the zone if
    it is not local), or :data:`MISS` if it is missing everywhere or corrupt.

    The checks and errors are :func:`load_result`'s, against the local object's size:
    intact bytes that do not decode raise :class:`DecodeError`, an untrusted pickle
    :class:`UnsafePickleError`; the object stays where it is. ``trusts_pickle`` is the
    trust rule (the action cache's ``trusts_pickle``); without it no pickle is trusted.
    """
    root = str(store.root)
    path = f"{root}/{object_key(ref.sha1)}"
    try:
        size = os.lstat(path).st_size
    except FileNotFoundError:
        try:
            size = os.lstat(store.download(ref)).st_size
        except ObjectNotFoundError:
            return MISS
    return load_result(store, root, ref.sha1, codec, size, None, trusts_pickle or _no_pickle)


def _no_pickle(sha1: str) -> bool:
    """The trust rule of a caller that trusts no pickle."""
    return False


def result_exists(store: Store, root: str, sha1: str, size: int) -> bool:
    """Whether the result object is present (locally with the right size, or only in the
    zone)."""
    path = f"{root}/{object_key(sha1)}"
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return store.zone is not None and store.zone.has(sha1)
    # A size that disagrees with the entry is a miss; the object is left alone (only a
    # load re-hashes it, and only bad bytes are quarantined).
    return stat.S_ISREG(st.st_mode) and st.st_size == size
