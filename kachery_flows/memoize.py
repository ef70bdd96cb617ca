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
its zone; see :mod:`kachery_flows.action_cache` and :mod:`kachery_flows._results`. A call goes
through :mod:`kachery_flows._memo_call` (one call loop for sync and async functions); keys,
queries and pickling are :mod:`kachery_flows._memo_base`'s. Concurrent calls with one key
compute once (a lock file with expiry, see :mod:`kachery_flows._lock`): across processes
of one host, and across hosts when the zone is a shared directory.

A decorated module-level function pickles by reference (Dask, Prefect, multiprocessing);
one defined in ``__main__`` or a notebook travels by value with cloudpickle and carries its
identity and code fingerprint, so it keeps the key it has where it was defined.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Literal, ParamSpec, Protocol, TypeVar, overload

from ._memo_base import MEMO_SCHEMA, CachedBase
from ._memo_call import begin, run_async, run_sync
from .store import Store
from .uri import Ref

__all__ = ["MEMO_SCHEMA", "AsyncCachedFunction", "CachedFunction", "kachery_cached"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class CachedFunction(CachedBase[P, R]):
    """A function memoized by :func:`kachery_cached` (see the module docs)."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        result: R = self._run(args, kwargs, self.return_ref)
        return result

    def ref(self, *args: P.args, **kwargs: P.kwargs) -> Ref:
        """The :class:`Ref` of this call's result, computing it if needed (never loaded)."""
        result: Ref = self._run(args, kwargs, True)
        return result

    def _run(self, args: tuple[Any, ...], kwargs: dict[str, Any], want_ref: bool) -> Any:
        value, miss = begin(self, args, kwargs, want_ref)
        return value if miss is None else run_sync(miss, self.__wrapped__, args, kwargs)


class AsyncCachedFunction(CachedBase[P, R]):
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
        value, miss = begin(self, args, kwargs, want_ref)
        return value if miss is None else await run_async(miss, self.__wrapped__, args, kwargs)


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
        "version": version,
        "ignore": ignore,
        "return_ref": return_ref,
        "store": store,
    }

    def decorate(f: Callable[..., Any]) -> Any:
        if not callable(f):
            raise TypeError(f"@kachery_cached expects a function, not {type(f).__name__}")
        if inspect.iscoroutinefunction(f):
            return AsyncCachedFunction(f, **options)
        return CachedFunction(f, **options)

    if func is not None:
        return decorate(func)
    return decorate
