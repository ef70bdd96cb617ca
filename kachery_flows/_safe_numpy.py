"""Numpy dtypes, arrays and scalars rebuilt from what a pickle that nobody vouched for
supplies, every argument checked (the numpy half of :mod:`kachery_flows._safe_pickle`).

``numpy.ndarray`` / ``_reconstruct`` / ``numpy.dtype`` / ``scalar`` / ``_frombuffer``
build arrays from ``(descr, shape, bytes of exactly the announced length)``; object
dtypes, structured dtypes with titles or odd offsets, subclasses and any other state are
refused. numpy's own ``dtype.__setstate__`` trusts the pickle's flags (flipping the object
flag turns raw bytes into object pointers, which crashes the interpreter), so dtypes are
built by numpy from a description and their state only checked. An array or dtype is a
:class:`Placeholder` until its state (``BUILD``) arrives.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import DecodeError, UnsafePickleError

__all__ = [
    "Ndarray",
    "Placeholder",
    "build_array",
    "build_dtype",
    "dtype_placeholder",
    "frombuffer",
    "reconstruct",
    "refuse",
    "scalar",
]

#: descr names numpy writes in a dtype's reduce tuple (``'f8'``, ``'U3'``, ``'M8'``, ...)
_DESCR = re.compile(r"(b1|[iu][1248]|f(2|4|8|12|16)|c(8|16|24|32)|[USV][0-9]{0,9}|[Mm]8)")
_TIME_UNIT = re.compile(r"(Y|M|W|D|h|m|s|ms|us|ns|ps|fs|as|generic)")


def refuse(what: str) -> UnsafePickleError:
    """The error for a pickle that names or builds ``what``, outside the allowed shapes."""
    return UnsafePickleError(
        f"refusing to unpickle {what}: only containers, scalars and plain numpy arrays load "
        "by default. Pass trusted=True if you trust whoever wrote this object (unpickling "
        "can run arbitrary code)."
    )


class Ndarray:
    """Stands for ``numpy.ndarray`` as the first argument of numpy's ``_reconstruct``."""


class Placeholder:
    """An array or dtype whose state (``BUILD``) has not arrived yet."""

    __slots__ = ("descr", "kind", "memo_keys")
    __hash__ = None  # type: ignore[assignment]  # like ndarray: never a dict key or set item

    def __init__(self, kind: str, descr: str = "") -> None:
        self.kind = kind
        self.descr = descr
        self.memo_keys: list[Any] = []


def _np() -> Any:
    import numpy

    return numpy


def _check_dtype(dtype: Any) -> Any:
    np = _np()
    if not isinstance(dtype, np.dtype):
        raise refuse(f"an array whose dtype is {type(dtype).__name__}")
    if dtype.hasobject:
        raise refuse(f"an array of dtype {dtype} (it holds Python objects)")
    return dtype


def dtype_placeholder(descr: Any, align: Any = False, copy: Any = True) -> Placeholder:
    """``numpy.dtype(descr, ...)``: a placeholder for a plain descr (see :func:`build_dtype`)."""
    if type(descr) is not str or not _DESCR.fullmatch(descr):
        raise refuse(f"numpy dtype {descr!r:.80}")
    return Placeholder("dtype", descr)


def build_dtype(descr: str, state: Any) -> Any:
    """A real dtype from ``descr`` and numpy's dtype state, built by numpy from a
    description, never by ``dtype.__setstate__``. The state's flags must be the ones numpy
    gives that dtype (a pickle that sets the object flag on raw bytes is refused)."""
    if type(state) is not tuple or len(state) not in (8, 9) or state[0] not in (3, 4):
        raise refuse("a numpy dtype with an unknown state")
    endian, subarray, names, fields, elsize = state[1:6]
    if endian not in ("<", ">", "|", "="):
        raise refuse("a numpy dtype with an unknown byte order")
    if subarray is not None or names is not None or fields is not None:
        dtype = _compound_dtype(descr, subarray, names, fields, elsize, state[7])
    else:
        dtype = _simple_dtype(descr, state)
    if state[7] != dtype.flags or (type(elsize) is int and elsize > 0 and elsize != dtype.itemsize):
        raise refuse(f"a numpy dtype whose flags or size do not match {dtype}")
    return dtype


def _simple_dtype(descr: str, state: Any) -> Any:
    endian, elsize = state[1], state[5]
    text = descr if endian == "|" else endian + descr
    kind = descr[0]
    if kind in "USV" and type(elsize) is int and elsize > 0:
        text = (endian if endian != "|" else "") + kind + str(elsize // (4 if kind == "U" else 1))
    if kind in "Mm":
        meta = state[8] if len(state) == 9 else None
        if not (
            type(meta) is tuple
            and len(meta) == 2
            and type(meta[1]) is tuple
            and len(meta[1]) == 4
            and type(meta[1][0]) is bytes
            and type(meta[1][1]) is int
        ):
            raise refuse("a datetime dtype without its unit")
        unit = meta[1][0].decode("ascii", "replace")
        if not _TIME_UNIT.fullmatch(unit) or not 0 < meta[1][1] < 1 << 31:
            raise refuse(f"a datetime dtype of unit {unit!r:.20}")
        text += f"[{meta[1][1]}{unit}]" if meta[1][1] != 1 else f"[{unit}]"
    try:
        return _check_dtype(_np().dtype(text))
    except TypeError as exc:
        raise DecodeError(f"not a numpy dtype: {text!r:.80} ({exc})") from None


def _compound_dtype(
    descr: str, subarray: Any, names: Any, fields: Any, elsize: Any, flags: Any
) -> Any:
    """A sub-array or structured dtype, rebuilt from dtypes this decoder already built."""
    np = _np()
    if subarray is not None:
        if (
            names is not None
            or fields is not None
            or type(subarray) is not tuple
            or len(subarray) != 2
            or not _shape_ok(subarray[1])
        ):
            raise refuse("a numpy sub-array dtype with an unknown state")
        return _check_dtype(np.dtype((_check_dtype(subarray[0]), subarray[1])))
    if (
        descr[0] != "V"
        or type(names) is not tuple
        or type(fields) is not dict
        or sorted(names) != sorted(fields)
        or type(elsize) is not int
        or not 0 <= elsize < 1 << 31
        or len(names) > 4096
    ):
        raise refuse("a structured numpy dtype with an unknown state")
    formats, offsets = [], []
    for name in names:
        field = fields[name]
        if (
            type(name) is not str
            or type(field) is not tuple
            or len(field) != 2
            or type(field[1]) is not int
            or not 0 <= field[1] < elsize
        ):
            raise refuse("a structured numpy dtype with titles or odd offsets")
        formats.append(_check_dtype(field[0]))
        offsets.append(field[1])
    try:
        spec = {"names": list(names), "formats": formats, "offsets": offsets, "itemsize": elsize}
        # numpy's NPY_ALIGNED_STRUCT flag is the only one taken from the pickle
        return _check_dtype(np.dtype(spec, align=type(flags) is int and bool(flags & 0x80)))
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"not a numpy dtype: {exc}") from None


def _shape_ok(shape: Any) -> bool:
    return (
        type(shape) is tuple
        and len(shape) <= 64
        and all(type(n) is int and 0 <= n < 1 << 40 for n in shape)
    )


def reconstruct(cls: Any, shape: Any, typecode: Any) -> Placeholder:
    """numpy's ``_reconstruct(ndarray, (0,), b'b')``: a placeholder for a plain array."""
    if cls is not Ndarray or shape != (0,) or typecode != b"b":
        raise refuse("a numpy array subclass or an unusual array reconstruction")
    return Placeholder("array")


def _array(shape: Any, dtype: Any, data: Any, fortran: bool) -> Any:
    np = _np()
    dtype = _check_dtype(dtype)
    if not _shape_ok(shape):
        raise refuse(f"an array of shape {shape!r:.80}")
    if type(data) not in (bytes, bytearray):
        raise refuse("an array whose data is not raw bytes")
    count = 1
    for n in shape:
        count *= n
    if count * dtype.itemsize != len(data):
        raise DecodeError(
            f"array data is {len(data)} bytes, but shape {shape} of {dtype} needs "
            f"{count * dtype.itemsize}"
        )
    flat = np.frombuffer(data, dtype=dtype, count=count) if count else np.empty(0, dtype)
    return flat.reshape(shape, order="F" if fortran else "C").copy(order="K")


def build_array(state: Any) -> Any:
    """The array an array placeholder stands for, from its ``BUILD`` state."""
    if type(state) is not tuple or len(state) != 5 or state[0] != 1:
        raise refuse("a numpy array with an unknown state")
    _version, shape, dtype, fortran, data = state
    if type(fortran) is not bool:
        raise refuse("a numpy array with an unknown state")
    return _array(shape, dtype, data, fortran)


def frombuffer(data: Any, dtype: Any, shape: Any, order: Any) -> Any:
    """numpy's ``_frombuffer`` (protocol 5 arrays): an array of exactly ``data``."""
    if order not in ("C", "F"):
        raise refuse(f"an array of order {order!r:.10}")
    return _array(shape, dtype, data, order == "F")


def scalar(dtype: Any, data: Any = None) -> Any:
    """numpy's ``scalar(dtype, data)``: a numpy scalar of exactly its size in bytes."""
    dtype = _check_dtype(dtype)
    if type(data) is not bytes or len(data) != dtype.itemsize:
        raise refuse("a numpy scalar whose data is not raw bytes of its size")
    return _np().frombuffer(data, dtype=dtype, count=1)[0]
