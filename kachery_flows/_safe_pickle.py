"""A decoder for pickles nobody vouched for: containers, scalars and numpy arrays only.

It never hands a pickle-supplied value to a constructor or ``__setstate__`` of numpy or
the standard library. Every global a pickle may name resolves to a function of this
module that checks its arguments:

* ``numpy.ndarray`` / ``_reconstruct`` / ``numpy.dtype`` / ``scalar`` / ``_frombuffer``
  build arrays from ``(descr, shape, bytes of exactly the announced length)``; object
  dtypes, structured dtypes, subclasses and any other state are refused. (numpy's own
  ``dtype.__setstate__`` trusts the pickle's flags: flipping the object flag turns raw
  bytes into object pointers, which crashes the interpreter.)
* ``bytearray``, ``set``, ``frozenset``, ``list``, ``tuple``, ``dict`` and ``OrderedDict``
  accept only values the pickle already holds (never an integer size, nor a ``range`` to
  expand), so nothing grows beyond the pickle's own size; ``_codecs.encode`` accepts only
  ``latin1`` (how protocol 0-2 pickles spell bytes).
* ``BUILD`` is allowed only on the array and dtype placeholders above, which are replaced
  by the real object on the stack and in the memo; using a placeholder before its state
  arrives is refused.

It runs on the pure-Python unpickler (``pickle._Unpickler``), whose opcode table can be
narrowed: persistent ids, extension codes, ``INST``/``OBJ``/``NEWOBJ`` and out-of-band
buffers are refused outright.
"""

from __future__ import annotations

import _compat_pickle
import io
import pickle
import re
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, ClassVar

from .errors import DecodeError, UnsafePickleError

__all__ = ["safe_loads"]

_REFUSED_OPCODES = (
    pickle.PERSID, pickle.BINPERSID, pickle.EXT1, pickle.EXT2, pickle.EXT4, pickle.INST,
    pickle.OBJ, pickle.NEWOBJ, pickle.NEWOBJ_EX, pickle.NEXT_BUFFER, pickle.READONLY_BUFFER,
)
#: descr names numpy writes in a dtype's reduce tuple (``'f8'``, ``'U3'``, ``'M8'``, ...)
_DESCR = re.compile(r"(b1|[iu][1248]|f(2|4|8|12|16)|c(8|16|24|32)|[USV][0-9]{0,9}|[Mm]8)")
_TIME_UNIT = re.compile(r"(Y|M|W|D|h|m|s|ms|us|ns|ps|fs|as|generic)")


def _refuse(what: str) -> UnsafePickleError:
    return UnsafePickleError(
        f"refusing to unpickle {what}: only containers, scalars and plain numpy arrays load "
        "by default. Pass trusted=True if you trust whoever wrote this object (unpickling "
        "can run arbitrary code)."
    )


class _Ndarray:
    """Stands for ``numpy.ndarray`` as the first argument of ``_reconstruct``."""


class _Placeholder:
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
        raise _refuse(f"an array whose dtype is {type(dtype).__name__}")
    if dtype.hasobject:
        raise _refuse(f"an array of dtype {dtype} (it holds Python objects)")
    return dtype


def _dtype(descr: Any, align: Any = False, copy: Any = True) -> _Placeholder:
    if type(descr) is not str or not _DESCR.fullmatch(descr):
        raise _refuse(f"numpy dtype {descr!r:.80}")
    return _Placeholder("dtype", descr)


def _build_dtype(descr: str, state: Any) -> Any:
    """A real dtype from ``descr`` and numpy's dtype state, built by numpy from a
    description, never by ``dtype.__setstate__``. The state's flags must be the ones numpy
    gives that dtype (a pickle that sets the object flag on raw bytes is refused)."""
    if type(state) is not tuple or len(state) not in (8, 9) or state[0] not in (3, 4):
        raise _refuse("a numpy dtype with an unknown state")
    endian, subarray, names, fields, elsize = state[1:6]
    if endian not in ("<", ">", "|", "="):
        raise _refuse("a numpy dtype with an unknown byte order")
    if subarray is not None or names is not None or fields is not None:
        dtype = _compound_dtype(descr, subarray, names, fields, elsize, state[7])
    else:
        dtype = _simple_dtype(descr, state)
    if state[7] != dtype.flags or (type(elsize) is int and elsize > 0
                                   and elsize != dtype.itemsize):
        raise _refuse(f"a numpy dtype whose flags or size do not match {dtype}")
    return dtype


def _simple_dtype(descr: str, state: Any) -> Any:
    endian, elsize = state[1], state[5]
    text = descr if endian == "|" else endian + descr
    kind = descr[0]
    if kind in "USV" and type(elsize) is int and elsize > 0:
        text = (endian if endian != "|" else "") + kind + str(elsize // (4 if kind == "U" else 1))
    if kind in "Mm":
        meta = state[8] if len(state) == 9 else None
        if not (type(meta) is tuple and len(meta) == 2 and type(meta[1]) is tuple
                and len(meta[1]) == 4 and type(meta[1][0]) is bytes and type(meta[1][1]) is int):
            raise _refuse("a datetime dtype without its unit")
        unit = meta[1][0].decode("ascii", "replace")
        if not _TIME_UNIT.fullmatch(unit) or not 0 < meta[1][1] < 1 << 31:
            raise _refuse(f"a datetime dtype of unit {unit!r:.20}")
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
        if names is not None or fields is not None or type(subarray) is not tuple \
                or len(subarray) != 2 or not _shape_ok(subarray[1]):
            raise _refuse("a numpy sub-array dtype with an unknown state")
        return _check_dtype(np.dtype((_check_dtype(subarray[0]), subarray[1])))
    if descr[0] != "V" or type(names) is not tuple or type(fields) is not dict \
            or sorted(names) != sorted(fields) or type(elsize) is not int \
            or not 0 <= elsize < 1 << 31 or len(names) > 4096:
        raise _refuse("a structured numpy dtype with an unknown state")
    formats, offsets = [], []
    for name in names:
        field = fields[name]
        if type(name) is not str or type(field) is not tuple or len(field) != 2 \
                or type(field[1]) is not int or not 0 <= field[1] < elsize:
            raise _refuse("a structured numpy dtype with titles or odd offsets")
        formats.append(_check_dtype(field[0]))
        offsets.append(field[1])
    try:
        spec = {"names": list(names), "formats": formats, "offsets": offsets, "itemsize": elsize}
        # numpy's NPY_ALIGNED_STRUCT flag is the only one taken from the pickle
        return _check_dtype(np.dtype(spec, align=type(flags) is int and bool(flags & 0x80)))
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"not a numpy dtype: {exc}") from None


def _shape_ok(shape: Any) -> bool:
    return type(shape) is tuple and len(shape) <= 64 and all(
        type(n) is int and 0 <= n < 1 << 40 for n in shape
    )


def _reconstruct(cls: Any, shape: Any, typecode: Any) -> _Placeholder:
    if cls is not _Ndarray or shape != (0,) or typecode != b"b":
        raise _refuse("a numpy array subclass or an unusual array reconstruction")
    return _Placeholder("array")


def _array(shape: Any, dtype: Any, data: Any, fortran: bool) -> Any:
    np = _np()
    dtype = _check_dtype(dtype)
    if not _shape_ok(shape):
        raise _refuse(f"an array of shape {shape!r:.80}")
    if type(data) not in (bytes, bytearray):
        raise _refuse("an array whose data is not raw bytes")
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


def _build_array(state: Any) -> Any:
    if type(state) is not tuple or len(state) != 5 or state[0] != 1:
        raise _refuse("a numpy array with an unknown state")
    _version, shape, dtype, fortran, data = state
    if type(fortran) is not bool:
        raise _refuse("a numpy array with an unknown state")
    return _array(shape, dtype, data, fortran)


def _frombuffer(data: Any, dtype: Any, shape: Any, order: Any) -> Any:
    if order not in ("C", "F"):
        raise _refuse(f"an array of order {order!r:.10}")
    return _array(shape, dtype, data, order == "F")


def _scalar(dtype: Any, data: Any = None) -> Any:
    dtype = _check_dtype(dtype)
    if type(data) is not bytes or len(data) != dtype.itemsize:
        raise _refuse("a numpy scalar whose data is not raw bytes of its size")
    return _np().frombuffer(data, dtype=dtype, count=1)[0]


_MATERIAL = (list, tuple, set, frozenset, dict, str, bytes, bytearray, OrderedDict)


def _container(cls: type) -> Callable[..., Any]:
    def make(*args: Any) -> Any:
        if len(args) > 1 or (args and type(args[0]) not in _MATERIAL):
            raise _refuse(f"{cls.__name__}() of {type(args[0]).__name__ if args else '?'}")
        return cls(*args)

    make.__name__ = cls.__name__
    return make


def _binary(cls: type) -> Callable[..., Any]:
    def make(*args: Any) -> Any:
        if not args:
            return cls()
        if type(args[0]) in (bytes, bytearray) and len(args) == 1:
            return cls(args[0])
        if type(args[0]) is str and len(args) == 2 and args[1] in ("latin1", "latin-1"):
            return cls(args[0], "latin1")
        raise _refuse(
            f"{cls.__name__}() of anything but bytes (an integer size would allocate it)"
        )

    make.__name__ = cls.__name__
    return make


def _encode(text: Any, encoding: Any = "utf-8") -> bytes:
    if type(text) is not str or encoding not in ("latin1", "latin-1"):
        raise _refuse(f"_codecs.encode(..., {encoding!r:.20})")
    return text.encode("latin1")


def _simple(cls: type) -> Callable[..., Any]:
    def make(*args: Any) -> Any:
        if not all(type(a) in (int, float, str, type(None)) for a in args):
            raise _refuse(f"{cls.__name__}() of other than numbers")
        return cls(*args)

    make.__name__ = cls.__name__
    return make


_NUMPY_FUNCS: dict[str, Any] = {
    "_reconstruct": _reconstruct, "scalar": _scalar, "_frombuffer": _frombuffer,
}
_GLOBALS: dict[tuple[str, str], Any] = {
    **{("builtins", c.__name__): _container(c) for c in (set, frozenset, list, dict, tuple)},
    ("collections", "OrderedDict"): _container(OrderedDict),
    ("builtins", "bytearray"): _binary(bytearray),
    ("builtins", "bytes"): _binary(bytes),
    ("builtins", "complex"): _simple(complex),
    ("builtins", "range"): _simple(range),
    ("builtins", "slice"): _simple(slice),
    ("_codecs", "encode"): _encode,
    ("numpy", "ndarray"): _Ndarray,
    ("numpy", "dtype"): _dtype,
    **{(m, n): f for m in ("numpy.core.multiarray", "numpy._core.multiarray",
                           "numpy.core.numeric", "numpy._core.numeric")
       for n, f in _NUMPY_FUNCS.items()},
}
#: Every (module, name) a pickle may name, for tests and docs.
ALLOWED_GLOBALS = frozenset(_GLOBALS)
_INTERNAL = frozenset(id(f) for f in _GLOBALS.values())


def _refused_opcode(self: Any) -> None:
    raise _refuse("a pickle that uses persistent ids, extensions, class instances or buffers")


class _SafeUnpickler(pickle._Unpickler):
    dispatch: ClassVar[dict[int, Any]] = dict(pickle._Unpickler.dispatch)
    # set by pickle._Unpickler (declared for the type checker)
    stack: list[Any]
    memo: dict[int, Any]
    append: Callable[[Any], None]
    read: Callable[[int], bytes]
    readline: Callable[[], bytes]
    proto: int

    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))
        self.placeholders = 0

    def find_class(self, module: str, name: str) -> Any:
        if self.proto < 3:  # Python 2 names, as pickle's fix_imports maps them
            module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        target = _GLOBALS.get((module, name))
        if target is None:
            raise _refuse(f"{module}.{name}"[:200])
        return target

    def _load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if type(inst) is not _Placeholder:
            raise _refuse(f"state for a {type(inst).__name__} (BUILD)")
        built = _build_dtype(inst.descr, state) if inst.kind == "dtype" else _build_array(state)
        self.stack[-1] = built
        for key in inst.memo_keys:
            if self.memo.get(key) is inst:
                self.memo[key] = built
        self.placeholders -= 1

    def _placeholder_check(self, obj: Any) -> None:
        if type(obj) is _Placeholder:
            raise _refuse("an array or dtype used before its state")

    def _load_dup(self) -> None:
        self._placeholder_check(self.stack[-1])
        self.append(self.stack[-1])

    def _remember(self, key: Any) -> None:
        obj = self.stack[-1]
        if type(obj) is _Placeholder:
            obj.memo_keys.append(key)
        self.memo[key] = obj

    def _load_put(self) -> None:
        i = int(self.readline()[:-1])
        if i < 0:
            raise ValueError("negative PUT argument")
        self._remember(i)

    def _load_binput(self) -> None:
        self._remember(self.read(1)[0])

    def _load_long_binput(self) -> None:
        self._remember(int.from_bytes(self.read(4), "little"))

    def _load_memoize(self) -> None:
        self._remember(len(self.memo))

    def _fetch(self, key: int) -> None:
        obj = self.memo[key]
        self._placeholder_check(obj)
        self.append(obj)

    def _load_get(self) -> None:
        self._fetch(int(self.readline()[:-1]))

    def _load_binget(self) -> None:
        self._fetch(self.read(1)[0])

    def _load_long_binget(self) -> None:
        self._fetch(int.from_bytes(self.read(4), "little"))

    def _load_reduce(self) -> None:
        args = self.stack.pop()
        func = self.stack[-1]
        if type(args) is not tuple:
            raise _refuse("a call whose arguments are not a tuple")
        self.stack[-1] = func(*args)
        if type(self.stack[-1]) is _Placeholder:
            self.placeholders += 1


_OVERRIDES = {
    pickle.BUILD: "_load_build", pickle.DUP: "_load_dup", pickle.PUT: "_load_put",
    pickle.BINPUT: "_load_binput", pickle.LONG_BINPUT: "_load_long_binput",
    pickle.MEMOIZE: "_load_memoize", pickle.GET: "_load_get", pickle.BINGET: "_load_binget",
    pickle.LONG_BINGET: "_load_long_binget", pickle.REDUCE: "_load_reduce",
}
for _op, _method in _OVERRIDES.items():
    _SafeUnpickler.dispatch[_op[0]] = getattr(_SafeUnpickler, _method)
for _op in _REFUSED_OPCODES:
    _SafeUnpickler.dispatch[_op[0]] = _refused_opcode


def _leaks_internals(value: Any) -> bool:
    """Whether a decoder placeholder or one of the decoder's own functions ended up in
    the value (a pickle can push a global without calling it)."""
    stack, seen = [value], set()
    while stack:
        item = stack.pop()
        cls = type(item)
        if cls is _Placeholder or id(item) in _INTERNAL:
            return True
        if cls in (list, tuple, set, frozenset, dict, OrderedDict) and id(item) not in seen:
            seen.add(id(item))
            if cls is dict or cls is OrderedDict:
                stack.extend(item.keys())
                stack.extend(item.values())
            else:
                stack.extend(item)
    return False


def safe_loads(data: bytes) -> Any:
    """Decode an untrusted pickle (see the module docs); :class:`UnsafePickleError` for
    anything outside the allowed shapes. Other failures (truncated or malformed streams)
    propagate as the unpickler raised them, for the caller to wrap."""
    unpickler = _SafeUnpickler(data)
    value = unpickler.load()
    if unpickler.placeholders or _leaks_internals(value):
        raise _refuse("a bare global, or an array or dtype that never received its state")
    return value
