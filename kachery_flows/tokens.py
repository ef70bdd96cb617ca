"""Canonical, process-independent content tokens for memo keys and cache policies.

A token is a short digest of a value's *content*: equal values give equal tokens in any
process, on any machine, whatever ``PYTHONHASHSEED`` is; values of different types or
shapes never share one. Each value is encoded with a type tag and length prefixes, then
digested, so nested containers cannot be confused with each other.

=============================  =======================================================
value                          token material
=============================  =======================================================
``Ref`` / ``sha1://`` string   the SHA-1 only (O(1), no I/O; labels ignored)
``np.ndarray``                 dtype, shape, xxh3-128 of the C-ordered buffer (views and
                               copies with equal values agree)
bytes-like                     length + xxh3-128
str, int, float, bool, None    exact value (floats by ``float.hex``: -0.0 != 0.0)
list / tuple / dict            type tag + items (dicts in key-token order)
set / frozenset                type tag + sorted item tokens
dataclass                      class ``module.qualname`` + field tokens
numpy scalar, Path, Enum       type + value
pandas Series / DataFrame      dtypes, index, column names and values
object with __kachery_token__  class ``module.qualname`` + the bytes it returns
anything else                  :class:`UnhashableArgumentError`
=============================  =======================================================

A key (a memo key of ``@kachery_cached``, a Prefect cache key of ``KacheryInputs``) is the
SHA-1 of one framing, built here for both: :func:`key_header` (a schema tag, the function's
identity, its version tag) followed by each argument's framed name and canonical encoding,
sorted by name (:func:`key_of`).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import struct
import weakref
from collections.abc import Callable, Iterable
from pathlib import PurePath
from typing import Any

import xxhash

from .errors import UnhashableArgumentError
from .uri import Ref, parse_uri

__all__ = [
    "TOKEN_SCHEMA",
    "argument_encoding",
    "array_token",
    "canonical_encoding",
    "frame",
    "key_header",
    "key_of",
    "register_array_token",
    "token_from_encoding",
    "token_of",
]

#: Bumped whenever the encoding below changes, so old keys never alias new ones.
TOKEN_SCHEMA = "kachery-flows-token-1"
_SCHEMA_BYTES = TOKEN_SCHEMA.encode()

_ARRAY_SLAB_BYTES = 16 << 20
_known_arrays: dict[int, tuple[weakref.ref[Any], bytes]] = {}


def register_array_token(array: Any, token: bytes) -> None:
    """Remember the token of a read-only array (e.g. loaded from a cache hit).

    Passing the same array object to another cached function then costs no hashing.
    Only arrays that cannot be modified in place are remembered.
    """
    flags = getattr(array, "flags", None)
    if flags is None or flags.writeable:
        return
    key = id(array)

    def _forget(_: object, key: int = key) -> None:
        _known_arrays.pop(key, None)

    _known_arrays[key] = (weakref.ref(array, _forget), token)


def _known_array_token(array: Any) -> bytes | None:
    entry = _known_arrays.get(id(array))
    if entry is None or entry[0]() is not array:
        return None
    flags = getattr(array, "flags", None)
    return entry[1] if flags is not None and not flags.writeable else None


def _frame(tag: bytes, payload: bytes) -> bytes:
    return tag + struct.pack("<Q", len(payload)) + payload


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def array_token(array: Any) -> bytes:
    """The token frame of an array (what :func:`register_array_token` remembers)."""
    known = _known_array_token(array)
    if known is not None:
        return known
    import numpy as np

    arr = np.asarray(array)
    if arr.dtype.hasobject:
        items = b"".join(_encode(v) for v in arr.ravel(order="C").tolist())
        return _frame(b"AO", repr(arr.shape).encode() + items)
    dtype = repr(arr.dtype.descr) if arr.dtype.fields else arr.dtype.str
    h = xxhash.xxh3_128()
    if arr.flags.c_contiguous:
        h.update(arr.reshape(-1).view(np.uint8).data)
    elif arr.ndim > 0 and arr.shape[0] > 0:
        rows = max(1, _ARRAY_SLAB_BYTES // max(1, arr[0].nbytes))
        for start in range(0, arr.shape[0], rows):
            slab = np.ascontiguousarray(arr[start : start + rows])
            h.update(slab.reshape(-1).view(np.uint8).data)
    header = f"{dtype}|{arr.shape!r}|".encode()
    return _frame(b"A", header + h.digest())


def _pandas_token(obj: Any) -> bytes | None:
    module = type(obj).__module__
    if not module.startswith("pandas"):
        return None
    import pandas as pd

    def column(series: Any) -> bytes:
        values = series.to_numpy()
        if values.dtype.hasobject:
            values = pd.util.hash_pandas_object(series, index=False).to_numpy()
        return _encode(str(series.dtype)) + array_token(values)

    if isinstance(obj, pd.DataFrame):
        parts = [_encode(list(map(str, obj.columns))), _encode_index(obj.index, column)]
        parts += [column(obj.iloc[:, i]) for i in range(obj.shape[1])]
        return _frame(b"PD", b"".join(parts))
    if isinstance(obj, pd.Series):
        parts = [_encode(str(obj.name)), _encode_index(obj.index, column), column(obj)]
        return _frame(b"PS", b"".join(parts))
    if isinstance(obj, pd.Index):
        return _frame(b"PI", _encode_index(obj, column))
    return None


def _encode_index(index: Any, column: Callable[[Any], bytes]) -> bytes:
    return column(index.to_series(index=None).reset_index(drop=True))


def _encode(value: Any) -> bytes:
    if value is None:
        return b"N"
    if value is True:
        return b"T"
    if value is False:
        return b"F"
    cls = type(value)
    if cls is int:
        return _frame(b"i", str(value).encode())
    if cls is float:
        return _frame(b"f", value.hex().encode())
    if cls is str:
        if value.startswith(("sha1://", "kachery:")):
            try:
                return _frame(b"R", parse_uri(value).sha1.encode())
            except ValueError:
                pass
        return _frame(b"s", value.encode("utf-8", "surrogatepass"))
    if cls is Ref:
        return _frame(b"R", value.sha1.encode())
    if cls in (bytes, bytearray, memoryview):
        data = memoryview(value).cast("B")
        return _frame(b"b", struct.pack("<Q", len(data)) + xxhash.xxh3_128(data).digest())
    if cls is complex:
        return _frame(b"c", f"{value.real.hex()},{value.imag.hex()}".encode())
    if cls in (list, tuple):
        return _frame(b"l" if cls is list else b"t", b"".join(_encode(v) for v in value))
    if cls is dict:
        pairs = sorted((_encode(k), _encode(v)) for k, v in value.items())
        return _frame(b"d", b"".join(k + v for k, v in pairs))
    if cls in (set, frozenset):
        items = sorted(_encode(v) for v in value)
        return _frame(b"S" if cls is set else b"Z", b"".join(items))
    return _encode_object(value, cls)


def _encode_object(value: Any, cls: type) -> bytes:
    custom = getattr(value, "__kachery_token__", None)
    if callable(custom) and not isinstance(value, type):
        token = custom()
        if not isinstance(token, bytes):
            raise UnhashableArgumentError(
                f"{_qualname(cls)}.__kachery_token__() must return bytes, "
                f"not {type(token).__name__}"
            )
        return _frame(b"K", _qualname(cls).encode() + b"|" + token)
    module = cls.__module__
    if module == "numpy" or module.startswith("numpy."):
        import numpy as np

        if isinstance(value, np.ndarray):
            return array_token(value)
        if isinstance(value, np.generic):
            return _frame(b"g", value.dtype.str.encode() + b"|" + value.tobytes())
        if isinstance(value, np.dtype):
            return _frame(b"y", str(value.descr if value.fields else value.str).encode())
    if isinstance(value, enum.Enum):
        return _frame(b"e", _qualname(cls).encode() + b"|" + _encode(value.value))
    if isinstance(value, PurePath):
        return _frame(b"p", _qualname(cls).encode() + b"|" + str(value).encode())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = b"".join(
            _encode(f.name) + _encode(getattr(value, f.name)) for f in dataclasses.fields(value)
        )
        return _frame(b"D", _qualname(cls).encode() + b"|" + fields)
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return _frame(b"n", _qualname(cls).encode() + b"|" + _encode(tuple(value)))
    pandas = _pandas_token(value)
    if pandas is not None:
        return pandas
    # Arrays from other libraries that expose numpy's array interface (e.g. memmap
    # subclasses, xarray's .values) go through the same buffer hash.
    if hasattr(value, "__array_interface__"):
        return array_token(value)
    raise UnhashableArgumentError(
        f"cannot compute a content token for a value of type {_qualname(cls)}. "
        "Pass it as a supported type (numbers, str, bytes, lists/tuples/dicts/sets, numpy "
        "arrays, dataclasses, pandas objects, Refs/URIs), exclude the argument from the key "
        "(ignore=[...] / exclude=[...]), or give the class a __kachery_token__(self) -> bytes "
        "method."
    )


def canonical_encoding(value: Any) -> bytes:
    """The self-delimiting canonical byte encoding of ``value`` that :func:`token_of` digests.

    Concatenating encodings is unambiguous, so a caller can digest several values (e.g. the
    arguments of a call) in one pass; ``token_from_encoding(canonical_encoding(v))`` equals
    ``token_of(v)``. Raises :class:`~kachery_flows.errors.UnhashableArgumentError` like
    :func:`token_of`.
    """
    try:
        return _encode(value)
    except RecursionError:
        raise UnhashableArgumentError(
            "cannot compute a content token: the value is nested too deeply or refers to itself"
        ) from None


def argument_encoding(value: Any, kind: str, name: str, owner: str) -> bytes:
    """:func:`canonical_encoding` of one argument of a call; an
    :class:`~kachery_flows.errors.UnhashableArgumentError` names it as
    ``<kind> '<name>' of <owner>`` (e.g. ``argument 'x' of analysis.spectrum``)."""
    try:
        return canonical_encoding(value)
    except UnhashableArgumentError as exc:
        raise UnhashableArgumentError(f"{kind} {name!r} of {owner}: {exc}") from None


def token_from_encoding(encoding: bytes) -> bytes:
    """The token of a value given its :func:`canonical_encoding`."""
    return hashlib.sha1(_SCHEMA_BYTES + encoding).digest()


def token_of(value: Any) -> bytes:
    """The canonical content token of ``value`` (a 20-byte digest).

    Raises :class:`~kachery_flows.errors.UnhashableArgumentError` for values without a
    canonical encoding (and for self-referencing containers).

    Examples
    --------
    >>> from kachery_flows.tokens import token_of
    >>> a = np.arange(6.0).reshape(2, 3)
    >>> token_of(a.T) == token_of(a.T.copy())          # views and copies agree
    True
    >>> token_of(a) == token_of(a.astype(np.float32))  # dtypes never collide
    False
    >>> token_of({3, 1, 2}) == token_of({1, 2, 3})       # sets are order-independent
    True
    """
    return token_from_encoding(canonical_encoding(value))


def frame(data: bytes) -> bytes:
    """``data`` after its length (8 bytes, little-endian): frames put one after another
    never run into each other."""
    return _frame(b"", data)


def key_header(
    schema: str, identity: str, version: str | None, code: str = "", closure: str | None = None
) -> bytes:
    """The start of every key of one function: ``schema``, then the framed ``identity``
    (``module.qualname``) and the framed version tag, which is ``version:<version>`` when a
    version is given, else ``code`` (a code fingerprint, or nothing), followed by
    ``|closure:<closure>`` when the function captured values (see
    :func:`kachery_flows._funcid.closure_fingerprint`)."""
    tag = f"version:{version}" if version is not None else code
    if closure is not None:
        tag += f"|closure:{closure}"
    return schema.encode() + frame(identity.encode()) + frame(tag.encode())


def key_of(header: bytes, arguments: Iterable[tuple[bytes, bytes]]) -> str:
    """The key (SHA-1, 40 hex digits) of a call: ``header`` (see :func:`key_header`), then
    each argument as its :func:`frame`-d name and its :func:`canonical_encoding`, in name
    order.

    Examples
    --------
    >>> from kachery_flows.tokens import canonical_encoding, frame, key_header, key_of
    >>> header = key_header("my-schema-1", "analysis.spectrum", version="2")
    >>> key = key_of(header, [(frame(b"fs"), canonical_encoding(1000.0))])
    >>> len(key), key == key_of(header, [(frame(b"fs"), canonical_encoding(1000))])
    (40, False)
    """
    h = hashlib.sha1(header)
    for name, encoding in arguments:
        h.update(name)
        h.update(encoding)
    return h.hexdigest()
