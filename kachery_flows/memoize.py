"""``@kachery_cached``: memoize a function by the content of its arguments.

::

    @kachery_cached                          # or @kachery_cached(version="2", ignore=["verbose"],
    def spectrum(x, fs=1000.0): ...          #                    return_ref=False, store=None)

    spectrum(x)              # computes, stores, returns the value
    spectrum(x)              # loads it (arrays memory-mapped, read-only)
    spectrum.key(x)          # memo key (40 hex), no compute
    spectrum.is_cached(x)    # bool
    spectrum.ref(x)          # Ref of the result, computing if needed; never loads it
    spectrum.record(x)       # provenance dict or None
    spectrum.clear(x)        # forget this call; spectrum.clear() forgets every call

The memo key is the SHA-1 of a canonical, process-independent encoding of: a schema tag,
the function's ``module.qualname``, ``version`` if given (else a fingerprint of the
function's normalized source, see :mod:`kachery_flows._funcid`), and the bound arguments
(defaults applied, ``ignore=`` removed, sorted by name) encoded by
:func:`kachery_flows.tokens.canonical_encoding`. The same call has the same key in any
process, on any machine, whatever ``PYTHONHASHSEED`` is.

Results and records live in the store (``store=`` or the default store at call time) and
its zone; see :mod:`kachery_flows.action_cache` and :mod:`kachery_flows._results`. Concurrent
calls with one key compute once (a lock file with expiry, see :mod:`kachery_flows._lock`):
across processes of one host, and across hosts when the zone is a shared directory.

A decorated module-level function pickles by reference (Dask, Prefect, multiprocessing);
one defined in ``__main__`` or a notebook travels by value with cloudpickle and carries its
identity and code fingerprint, so it keeps the key it has where it was defined.
"""

from __future__ import annotations

import functools
import hashlib
import sys
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import (
    TYPE_CHECKING,
    Any,
    Generic,
    Literal,
    ParamSpec,
    Protocol,
    TypeVar,
    cast,
    overload,
)

from . import codecs
from ._inline import inline_candidate
from ._results import MISS, store_result
from .action_cache import INLINE_ENTRY_MAX, ActionCache, CacheEntry, action_cache, b64
from .errors import UnhashableArgumentError
from .records import build_record
from .store import Store, get_default_store
from .tokens import argument_encoding, canonical_encoding
from .uri import Ref

if TYPE_CHECKING:
    from ._funcid import ArgBinder

__all__ = ["MEMO_SCHEMA", "AsyncCachedFunction", "CachedFunction", "kachery_cached"]

#: Schema tag at the start of every memo key's material; bumped if the encoding changes.
MEMO_SCHEMA = "kachery-flows-memo-1"

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

_POLL_FIRST = 0.005
_POLL_MAX = 0.25
_SUFFIX = {"npy": ".npy", "json": ".json", "pkl": ".pkl", "bytes": ""}


def _frame(data: bytes) -> bytes:
    return len(data).to_bytes(8, "little") + data


def _resolve(module: Any, qualname: str) -> Any:
    obj = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _restore(
    cls: type[_CachedBase[Any, Any]], func: Callable[..., Any], state: dict[str, Any]
) -> Any:
    """Rebuild a wrapper pickled by value, keeping the identity and code it was made with."""
    return cls(func, **state)


class _CachedBase(Generic[P, R]):
    """What sync and async cached functions share: keys, lookups, records, pickling."""

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
        from ._funcid import (
            ArgBinder,
            call_shape,
            closure_fingerprint,
            code_fingerprint,
            function_identity,
            may_rename,
        )

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
        self._frames = tuple((n, _frame(n.encode())) for n in self._names)
        self._code_obj = getattr(target, "__code__", None)
        self._set_prefix()
        name = getattr(target, "__name__", "")
        self._stem = name if name.isidentifier() else "result"
        # Let plain pickle find a function decorated with @ through its wrapper; a function
        # that is reachable under its own name (not ours) is left untouched.
        if may_rename(func):
            func.__qualname__ = f"{func.__qualname__}.__wrapped__"

    def _set_prefix(self) -> None:
        tag = f"version:{self.version}" if self.version is not None else self.code
        if self.closure is not None:
            tag += f"|closure:{self.closure}"
        self._prefix = (
            MEMO_SCHEMA.encode() + _frame(self.identity.encode()) + _frame(tag.encode())
        )

    def _code_replaced(self) -> None:
        """The function's ``__code__`` was replaced after decoration: fingerprint it again
        (as joblib does, the new code computes anew instead of returning stale results)."""
        from ._funcid import closure_fingerprint, code_fingerprint

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
            MEMO_SCHEMA, self.identity, self.code, repr(self.closure), repr(self.version),
            repr(self.ignore), bound,
        )

    def _bound_token(self) -> str:
        from .tokens import canonical_encoding

        try:
            return canonical_encoding((self._pre_args, self._pre_kwargs)).hex()
        except TypeError:
            return f"{id(self)}-{id(self._pre_args)}"

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return _BoundCached(self, instance)

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
        h = hashlib.sha1(self._prefix)
        for (_, frame), encoding in zip(self._frames, encodings, strict=True):
            h.update(frame)
            h.update(encoding)
        return h.hexdigest(), values, encodings

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
        cache.materialize(key, entry, self._stem + _SUFFIX[entry.codec])  # its URIs must work
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

    # ------------------------------------------------------------ hits, misses
    def _ref_of(self, entry: CacheEntry) -> Ref:
        return Ref(entry.result, self._stem + _SUFFIX[entry.codec], entry.codec)

    def _lookup(self, cache: ActionCache, key: str, want_ref: bool) -> Any:
        return self._use(cache, key, cache.get(key), want_ref)

    def _use(self, cache: ActionCache, key: str, entry: CacheEntry | None, want_ref: bool) -> Any:
        """The value (or Ref) of ``entry``, or MISS."""
        if entry is None:
            return MISS
        if want_ref:
            if not cache.present(entry):
                return MISS
            entry = cache.materialize(key, entry, self._stem + _SUFFIX[entry.codec])
            value: Any = self._ref_of(entry)
        else:
            value = cache.load(entry)
            if value is MISS:
                return MISS
        cache.note_use(key, self.identity, entry)
        return value

    def _publish(
        self,
        cache: ActionCache,
        key: str,
        values: dict[str, Any],
        encodings: list[bytes],
        value: Any,
        duration: float,
        started: float,
        want_ref: bool,
        previous: CacheEntry | None,
    ) -> Any:
        store = cache.store
        inline = None
        # an ordinary entry (whose objects were damaged or lost) stays ordinary
        if not want_ref and (previous is None or previous.result_data is not None):
            inline = inline_candidate(store.zone is not None, value, self._stem)
        stored = inline[0] if inline is not None else store_result(store, value, self._stem)
        record = build_record(
            key=key,
            function=self.identity,
            version=self.version,
            code=self.code,
            closure=self.closure,
            names=self._names,
            values=values,
            encodings=encodings,
            ignored=self.ignore,
            result=stored,
            duration=duration,
            created=started,
        )
        codec = stored.ref.codec or "pkl"
        entry: CacheEntry | None = None
        if inline is not None:
            data = codecs.encode_json(record)
            entry = CacheEntry(
                hashlib.sha1(data).hexdigest(), stored.ref.sha1, codec, stored.size, None,
                b64(data), inline[1],
            )
            if len(entry.encode()) > INLINE_ENTRY_MAX:
                entry = None
                store_result(store, value, self._stem)  # too big together: ordinary objects
            elif codec == "pkl":
                cache.trust_inline(stored.ref.sha1)
        if entry is None:
            if codec == "pkl":
                cache.trust(stored.ref.sha1)
            record_ref = cache.write_record(record)
            entry = CacheEntry(
                record_ref.sha1, stored.ref.sha1, codec, stored.size, stored.array_token
            )
        cache.put(key, self.identity, entry)
        return stored.ref if want_ref else value


class CachedFunction(_CachedBase[P, R]):
    """A function memoized by :func:`kachery_cached` (see the module docs)."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        result: R = self._run(args, kwargs, self.return_ref)
        return result

    def ref(self, *args: P.args, **kwargs: P.kwargs) -> Ref:
        """The :class:`Ref` of this call's result, computing it if needed (never loaded)."""
        result: Ref = self._run(args, kwargs, True)
        return result

    def _run(self, args: tuple[Any, ...], kwargs: dict[str, Any], want_ref: bool) -> Any:
        key, values, encodings = self._key_material(args, kwargs)
        cache = self._cache()
        value = self._lookup(cache, key, want_ref)
        if value is not MISS:
            return value
        lock = cache.lock(key)
        delay = _POLL_FIRST
        while not lock.acquire():
            time.sleep(delay)
            delay = min(delay * 2, _POLL_MAX)
            value = self._lookup(cache, key, want_ref)
            if value is not MISS:
                return value
        try:
            previous = cache.get(key)
            value = self._use(cache, key, previous, want_ref)
            if value is not MISS:
                return value
            started = time.time()
            t0 = time.perf_counter()
            result = self.__wrapped__(*args, **kwargs)
            duration = time.perf_counter() - t0
            return self._publish(
                cache, key, values, encodings, result, duration, started, want_ref, previous
            )
        finally:
            lock.release()


class AsyncCachedFunction(_CachedBase[P, R]):
    """An ``async def`` function memoized by :func:`kachery_cached`.

    Calling it returns a coroutine; ``inspect.iscoroutinefunction`` is true for it (so
    Prefect and asyncio treat it as the coroutine function it wraps).
    """

    def __init__(self, func: Callable[..., Any], **options: Any) -> None:
        super().__init__(func, **options)
        # inspect.iscoroutinefunction() accepts "function-like" objects by these attributes.
        target = self._target
        self.__code__ = target.__code__
        self.__defaults__ = getattr(target, "__defaults__", None)
        self.__kwdefaults__ = getattr(target, "__kwdefaults__", None)

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        result: R = await self._run(args, kwargs, self.return_ref)
        return result

    async def ref(self, *args: P.args, **kwargs: P.kwargs) -> Ref:
        """The :class:`Ref` of this call's result, computing it if needed (never loaded)."""
        result: Ref = await self._run(args, kwargs, True)
        return result

    async def _run(self, args: tuple[Any, ...], kwargs: dict[str, Any], want_ref: bool) -> Any:
        key, values, encodings = self._key_material(args, kwargs)
        cache = self._cache()
        value = self._lookup(cache, key, want_ref)
        if value is not MISS:
            return value
        lock = cache.lock(key)
        delay = _POLL_FIRST
        import asyncio

        while not lock.acquire():
            await asyncio.sleep(delay)
            delay = min(delay * 2, _POLL_MAX)
            value = self._lookup(cache, key, want_ref)
            if value is not MISS:
                return value
        try:
            previous = cache.get(key)
            value = self._use(cache, key, previous, want_ref)
            if value is not MISS:
                return value
            started = time.time()
            t0 = time.perf_counter()
            result = await self.__wrapped__(*args, **kwargs)
            duration = time.perf_counter() - t0
            return self._publish(
                cache, key, values, encodings, result, duration, started, want_ref, previous
            )
        finally:
            lock.release()


class _BoundCached:
    """A cached method bound to an instance: ``obj.method(x)``, ``obj.method.key(x)``..."""

    def __init__(self, cached: _CachedBase[Any, Any], instance: Any) -> None:
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


class _Decorator(Protocol):
    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, func: Callable[P, Coroutine[Any, Any, T]], /
    ) -> AsyncCachedFunction[P, T]: ...
    @overload
    def __call__(self, func: Callable[P, T], /) -> CachedFunction[P, T]: ...


class _RefDecorator(Protocol):
    @overload
    def __call__(
        self, func: Callable[P, Coroutine[Any, Any, Any]], /
    ) -> AsyncCachedFunction[P, Ref]: ...
    @overload
    def __call__(self, func: Callable[P, Any], /) -> CachedFunction[P, Ref]: ...


@overload
def kachery_cached(  # type: ignore[overload-overlap]
    func: Callable[P, Coroutine[Any, Any, T]], /
) -> AsyncCachedFunction[P, T]: ...
@overload
def kachery_cached(func: Callable[P, T], /) -> CachedFunction[P, T]: ...
@overload
def kachery_cached(
    *,
    version: str | None = ...,
    ignore: Iterable[str] = ...,
    return_ref: Literal[False] = ...,
    store: Store | None = ...,
) -> _Decorator: ...
@overload
def kachery_cached(
    *,
    version: str | None = ...,
    ignore: Iterable[str] = ...,
    return_ref: Literal[True],
    store: Store | None = ...,
) -> _RefDecorator: ...
def kachery_cached(
    func: Callable[..., Any] | None = None,
    /,
    *,
    version: str | None = None,
    ignore: Iterable[str] = (),
    return_ref: bool = False,
    store: Store | None = None,
) -> Any:
    """Memoize a function by the content of its arguments (see :mod:`kachery_flows.memoize`).

    Parameters
    ----------
    version:
        An explicit code version: the key then depends on it instead of the function's
        source, so edits keep the cache until you bump it (and callee changes, which the
        source fingerprint cannot see, invalidate it when you do).
    ignore:
        Parameter names left out of the key (``"self"`` for methods, ``verbose``,
        ``n_jobs``, ...).
    return_ref:
        Return the result's :class:`~kachery_flows.Ref` (with its codec) instead of the
        value; a hit then reads nothing but the cache entry.
    store:
        The :class:`~kachery_flows.Store` to use; default: the store configured by the
        environment at call time (so Dask workers and Prefect tasks use their own).

    Examples
    --------
    >>> from kachery_flows import kachery_cached
    >>> calls = []
    >>> @kachery_cached
    ... def total(x, scale=1.0):
    ...     calls.append(1)
    ...     return float(np.sum(x)) * scale
    >>> total(np.arange(4.0)), total(np.arange(4.0)), len(calls)  # computed once
    (6.0, 6.0, 1)
    >>> total.is_cached(np.arange(4.0), scale=1.0)   # defaults and keywords agree
    True
    >>> total.record(np.arange(4.0))["result"]["codec"]
    'json'
    """
    options: dict[str, Any] = {
        "version": version, "ignore": ignore, "return_ref": return_ref, "store": store,
    }

    def decorate(f: Callable[..., Any]) -> Any:
        if not callable(f):
            raise TypeError(f"@kachery_cached expects a function, not {type(f).__name__}")
        import inspect

        if inspect.iscoroutinefunction(f):
            return AsyncCachedFunction(f, **options)
        return CachedFunction(f, **options)

    if func is not None:
        return decorate(func)
    return decorate
