"""A memoized function as an object: what identifies it, its keys, and what it can tell
without calling it (``key``, ``is_cached``, ``record``, ``clear``), how it pickles and binds
as a method.

:class:`CachedBase` is shared by :class:`~kachery_flows.memoize.CachedFunction` and
:class:`~kachery_flows.memoize.AsyncCachedFunction`; a call goes through
:mod:`kachery_flows._memo_call`. The key framing is :func:`kachery_flows.tokens.key_of`'s;
identity, code and closure fingerprints and argument binding are
:mod:`kachery_flows._funcid`'s.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable
from typing import Any, Generic, ParamSpec, TypeVar, cast

from . import codecs
from ._funcid import (
    ArgBinder,
    call_shape,
    closure_fingerprint,
    code_fingerprint,
    function_identity,
    may_rename,
)
from .action_cache import ActionCache, action_cache
from .errors import UnhashableArgumentError
from .store import Store, get_default_store
from .tokens import argument_encoding, canonical_encoding, frame, key_header, key_of

__all__ = ["MEMO_SCHEMA", "BoundCached", "CachedBase"]

#: Schema tag at the start of every memo key's material; bumped if the encoding changes.
MEMO_SCHEMA = "kachery-flows-memo-1"

P = ParamSpec("P")
R = TypeVar("R")


def _resolve(module: Any, qualname: str) -> Any:
    obj = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _restore(
    cls: type[CachedBase[Any, Any]], func: Callable[..., Any], state: dict[str, Any]
) -> Any:
    """Rebuild a wrapper pickled by value, keeping the identity and code it was made with."""
    return cls(func, **state)


class CachedBase(Generic[P, R]):
    """What sync and async cached functions share: identity, keys, queries, pickling."""

    __wrapped__: Callable[..., Any]

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        version: str | None = None,
        ignore: Iterable[str] = (),
        return_ref: bool = False,
        store: Store | None = None,
        identity: str | None = None,
        code: str | None = None,
        closure: str | None = None,
    ) -> None:
        if version is not None and not isinstance(version, str):
            raise TypeError(f"version must be a str, not {type(version).__name__}")
        if isinstance(ignore, str):
            ignore = (ignore,)
        shape = call_shape(func)
        target = shape.target
        self._target = target
        self._pre_args = shape.pre_args
        self._pre_kwargs = shape.pre_kwargs
        self._pre = bool(shape.pre_args or shape.pre_kwargs)
        functools.update_wrapper(cast(Any, self), func)
        #: ``module.qualname`` of the function.
        self.identity = identity if identity is not None else function_identity(target)
        if code is None:
            try:
                code = code_fingerprint(target)
            except TypeError:
                if version is None:
                    raise
                code = "unavailable"
        #: Fingerprint of the function's normalized source (or bytecode).
        self.code = code
        if closure is None and identity is None:
            closure = closure_fingerprint(target, strict=version is None)
        #: Fingerprint of the values captured from enclosing scopes (None: nothing captured).
        self.closure = closure
        self.version = version
        self.ignore = tuple(ignore)
        self.return_ref = return_ref
        self.store = store
        self._binder: ArgBinder = ArgBinder(target, self.ignore)
        self._names = self._binder.key_names
        self._frames = tuple(frame(name.encode()) for name in self._names)
        self._code_obj = getattr(target, "__code__", None)
        self._set_prefix()
        name = getattr(target, "__name__", "")
        self._stem = name if name.isidentifier() else "result"
        # Let plain pickle find a function decorated with @ through its wrapper; a function
        # that is reachable under its own name (not ours) is left untouched.
        if may_rename(func):
            func.__qualname__ = f"{func.__qualname__}.__wrapped__"

    def _set_prefix(self) -> None:
        self._prefix = key_header(MEMO_SCHEMA, self.identity, self.version, self.code, self.closure)

    def _code_replaced(self) -> None:
        """The function's ``__code__`` was replaced after decoration: fingerprint it again
        (as joblib does, the new code computes anew instead of returning stale results)."""
        target = self._target
        self._code_obj = target.__code__
        self.code = code_fingerprint(target)
        self.closure = closure_fingerprint(target, strict=self.version is None)
        self._set_prefix()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.identity}>"

    # ---------------------------------------------------------------- pickling
    def _state(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "ignore": self.ignore,
            "return_ref": self.return_ref,
            "store": self.store,
            "identity": self.identity,
            "code": self.code,
            "closure": self.closure,
        }

    def __reduce__(self) -> str | tuple[Any, ...]:
        module_name = self.__module__
        module = sys.modules.get(module_name)
        qualname: str = getattr(self, "__qualname__", "")
        if module_name != "__main__" and module is not None and _resolve(module, qualname) is self:
            return qualname
        return (_restore, (type(self), self.__wrapped__, self._state()))

    def __dask_tokenize__(self) -> tuple[str, ...]:
        # a bound method or partial: calls bind these first, so tasks must not alias
        bound = self._bound_token() if self._pre else ""
        return (
            MEMO_SCHEMA,
            self.identity,
            self.code,
            repr(self.closure),
            repr(self.version),
            repr(self.ignore),
            bound,
        )

    def _bound_token(self) -> str:
        try:
            return canonical_encoding((self._pre_args, self._pre_kwargs)).hex()
        except TypeError:
            return f"{id(self)}-{id(self._pre_args)}"

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return BoundCached(self, instance)

    # -------------------------------------------------------------------- keys
    def _key_material(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[str, dict[str, Any], list[bytes]]:
        code = self._code_obj
        if code is not None and self._target.__code__ is not code:
            self._code_replaced()
        if self._pre:
            args = self._pre_args + args
            kwargs = {**self._pre_kwargs, **kwargs}
        values = self._binder.bind(args, kwargs)
        try:
            encodings = [canonical_encoding(values[name]) for name in self._names]
        except UnhashableArgumentError:
            for name in self._names:  # raise again, naming the argument
                argument_encoding(values[name], "argument", name, self.identity)
            raise
        key = key_of(self._prefix, zip(self._frames, encodings, strict=True))
        return key, values, encodings

    def key(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The memo key (40 hex digits) of this call; nothing is computed or read."""
        return self._key_material(args, kwargs)[0]

    def _cache(self) -> ActionCache:
        return action_cache(self.store if self.store is not None else get_default_store())

    def is_cached(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Whether this call has an entry whose result object exists and may be loaded
        (nothing is loaded; a pickled result needs trust, see :mod:`kachery_flows.action_cache`)."""
        cache = self._cache()
        entry = cache.get(self.key(*args, **kwargs))
        if entry is None or not (self.return_ref or cache.trusts(entry)):
            return False
        return cache.present(entry)

    def record(self, *args: P.args, **kwargs: P.kwargs) -> dict[str, Any] | None:
        """The provenance record of this call, or None if it is not cached."""
        cache = self._cache()
        key = self.key(*args, **kwargs)
        entry = cache.get(key)
        if entry is None:
            return None
        cache.materialize(key, entry, self._result_name(entry.codec))  # its URIs must work
        return cache.read_record(entry)

    def clear(self, *args: P.args, **kwargs: P.kwargs) -> int:
        """Forget this call's entry, or with no arguments every entry of this function
        that this machine computed or used; returns how many entries were removed.

        Result objects stay until ``kachery-flows gc`` finds that no record reaches them.
        """
        cache = self._cache()
        if args or kwargs:
            keys = {self.key(*args, **kwargs)}
        else:
            keys = {item.key for item in cache.iter_index() if item.function == self.identity}
        return sum(cache.forget(key) for key in sorted(keys))

    def _result_name(self, codec: str) -> str:
        """The label of this function's results stored with ``codec``."""
        return self._stem + codecs.suffix(codec)


class BoundCached:
    """A cached method bound to an instance: ``obj.method(x)``, ``obj.method.key(x)``..."""

    def __init__(self, cached: CachedBase[Any, Any], instance: Any) -> None:
        self.__func__ = cached
        self.__self__ = instance

    def __repr__(self) -> str:
        return f"<bound {self.__func__!r} of {self.__self__!r}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__func__(self.__self__, *args, **kwargs)  # type: ignore[operator]

    def key(self, *args: Any, **kwargs: Any) -> str:
        """See :meth:`CachedFunction.key`."""
        return self.__func__.key(self.__self__, *args, **kwargs)

    def is_cached(self, *args: Any, **kwargs: Any) -> bool:
        """See :meth:`CachedFunction.is_cached`."""
        return self.__func__.is_cached(self.__self__, *args, **kwargs)

    def ref(self, *args: Any, **kwargs: Any) -> Any:
        """See :meth:`CachedFunction.ref`."""
        return self.__func__.ref(self.__self__, *args, **kwargs)  # type: ignore[attr-defined]

    def record(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        """See :meth:`CachedFunction.record`."""
        return self.__func__.record(self.__self__, *args, **kwargs)

    def clear(self, *args: Any, **kwargs: Any) -> int:
        """See :meth:`CachedFunction.clear` (no arguments: every entry of the method)."""
        if not args and not kwargs:
            return self.__func__.clear()
        return self.__func__.clear(self.__self__, *args, **kwargs)
