"""A decoder for pickles nobody vouched for: containers, scalars and numpy arrays only.

It never hands a pickle-supplied value to a constructor or ``__setstate__`` of numpy or
the standard library. Every global a pickle may name resolves to a function of this
module, or for numpy of :mod:`kachery_flows._safe_numpy`, that checks its arguments:

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
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, ClassVar

from ._safe_numpy import (
    Ndarray,
    Placeholder,
    build_array,
    build_dtype,
    dtype_placeholder,
    frombuffer,
    reconstruct,
    refuse,
    scalar,
)

__all__ = ["safe_loads"]

_REFUSED_OPCODES = (
    pickle.PERSID,
    pickle.BINPERSID,
    pickle.EXT1,
    pickle.EXT2,
    pickle.EXT4,
    pickle.INST,
    pickle.OBJ,
    pickle.NEWOBJ,
    pickle.NEWOBJ_EX,
    pickle.NEXT_BUFFER,
    pickle.READONLY_BUFFER,
)


_MATERIAL = (list, tuple, set, frozenset, dict, str, bytes, bytearray, OrderedDict)


def _container(cls: type) -> Callable[..., Any]:
    def make(*args: Any) -> Any:
        if len(args) > 1 or (args and type(args[0]) not in _MATERIAL):
            raise refuse(f"{cls.__name__}() of {type(args[0]).__name__ if args else '?'}")
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
        raise refuse(f"{cls.__name__}() of anything but bytes (an integer size would allocate it)")

    make.__name__ = cls.__name__
    return make


def _encode(text: Any, encoding: Any = "utf-8") -> bytes:
    if type(text) is not str or encoding not in ("latin1", "latin-1"):
        raise refuse(f"_codecs.encode(..., {encoding!r:.20})")
    return text.encode("latin1")


def _simple(cls: type) -> Callable[..., Any]:
    def make(*args: Any) -> Any:
        if not all(type(a) in (int, float, str, type(None)) for a in args):
            raise refuse(f"{cls.__name__}() of other than numbers")
        return cls(*args)

    make.__name__ = cls.__name__
    return make


_NUMPY_FUNCS: dict[str, Any] = {
    "_reconstruct": reconstruct,
    "scalar": scalar,
    "_frombuffer": frombuffer,
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
    ("numpy", "ndarray"): Ndarray,
    ("numpy", "dtype"): dtype_placeholder,
    **{
        (m, n): f
        for m in (
            "numpy.core.multiarray",
            "numpy._core.multiarray",
            "numpy.core.numeric",
            "numpy._core.numeric",
        )
        for n, f in _NUMPY_FUNCS.items()
    },
}
#: Every (module, name) a pickle may name, for tests and docs.
ALLOWED_GLOBALS = frozenset(_GLOBALS)
_INTERNAL = frozenset(id(f) for f in _GLOBALS.values())


def _refused_opcode(self: Any) -> None:
    raise refuse("a pickle that uses persistent ids, extensions, class instances or buffers")


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
            raise refuse(f"{module}.{name}"[:200])
        return target

    def _load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if type(inst) is not Placeholder:
            raise refuse(f"state for a {type(inst).__name__} (BUILD)")
        built = build_dtype(inst.descr, state) if inst.kind == "dtype" else build_array(state)
        self.stack[-1] = built
        for key in inst.memo_keys:
            if self.memo.get(key) is inst:
                self.memo[key] = built
        self.placeholders -= 1

    def _placeholder_check(self, obj: Any) -> None:
        if type(obj) is Placeholder:
            raise refuse("an array or dtype used before its state")

    def _load_dup(self) -> None:
        self._placeholder_check(self.stack[-1])
        self.append(self.stack[-1])

    def _remember(self, key: Any) -> None:
        obj = self.stack[-1]
        if type(obj) is Placeholder:
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
            raise refuse("a call whose arguments are not a tuple")
        self.stack[-1] = func(*args)
        if type(self.stack[-1]) is Placeholder:
            self.placeholders += 1


_OVERRIDES = {
    pickle.BUILD: "_load_build",
    pickle.DUP: "_load_dup",
    pickle.PUT: "_load_put",
    pickle.BINPUT: "_load_binput",
    pickle.LONG_BINPUT: "_load_long_binput",
    pickle.MEMOIZE: "_load_memoize",
    pickle.GET: "_load_get",
    pickle.BINGET: "_load_binget",
    pickle.LONG_BINGET: "_load_long_binget",
    pickle.REDUCE: "_load_reduce",
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
        if cls is Placeholder or id(item) in _INTERNAL:
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
        raise refuse("a bare global, or an array or dtype that never received its state")
    return value
