"""``kachery_task``: ``prefect.task`` with kachery result persistence and cache keys."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, Literal, ParamSpec, Protocol, TypeVar, overload

from prefect import Task, task
from prefect.cache_policies import CachePolicy

from .._results import put_value
from ..store import get_default_store
from ..uri import Ref
from ._policy import _RETURNS_REF, KACHERY_DEFAULT, KacheryInputs
from ._serializer import KacherySerializer

__all__ = ["kachery_task"]

P = ParamSpec("P")
R = TypeVar("R")


def _as_ref(value: Any, serializer: Any, stem: str) -> Ref:
    """``value`` stored in the serializer's store (the default store for other serializers)."""
    if isinstance(value, Ref):
        return value
    is_ours = isinstance(serializer, KacherySerializer)
    return put_value(serializer.get_store() if is_ours else get_default_store(), value, stem)


def _returning_ref(fn: Callable[..., Any], serializer: Any) -> Callable[..., Any]:
    """Wrap ``fn`` so that it stores its result and returns the result's Ref."""
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise TypeError(f"return_ref=True cannot wrap the generator function {fn!r}")
    name = getattr(fn, "__name__", "")
    stem = name if isinstance(name, str) and name.isidentifier() else "result"
    wrapper: Callable[..., Any]
    if inspect.iscoroutinefunction(fn):

        async def async_wrapper(*args: Any, **kwargs: Any) -> Ref:
            return _as_ref(await fn(*args, **kwargs), serializer, stem)

        wrapper = async_wrapper
    else:

        def sync_wrapper(*args: Any, **kwargs: Any) -> Ref:
            return _as_ref(fn(*args, **kwargs), serializer, stem)

        wrapper = sync_wrapper
    functools.update_wrapper(wrapper, fn)
    setattr(wrapper, _RETURNS_REF, True)
    return wrapper


class _TaskDecorator(Protocol):
    def __call__(self, fn: Callable[P, R], /) -> Task[P, R]: ...


class _RefTaskDecorator(Protocol):
    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, Any]], /
    ) -> Task[P, Coroutine[Any, Any, Ref]]: ...
    @overload
    def __call__(self, fn: Callable[P, Any], /) -> Task[P, Ref]: ...


@overload
def kachery_task(fn: Callable[P, R], /) -> Task[P, R]: ...
@overload
def kachery_task(
    *,
    return_ref: Literal[False] = ...,
    version: str | None = ...,
    cache_policy: CachePolicy | None = ...,
    result_serializer: Any = ...,
    artifact: bool = ...,
    **task_options: Any,
) -> _TaskDecorator: ...
@overload
def kachery_task(
    *,
    return_ref: Literal[True],
    version: str | None = ...,
    cache_policy: CachePolicy | None = ...,
    result_serializer: Any = ...,
    artifact: bool = ...,
    **task_options: Any,
) -> _RefTaskDecorator: ...
def kachery_task(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    return_ref: bool = False,
    version: str | None = None,
    cache_policy: CachePolicy | None = None,
    result_serializer: Any = None,
    artifact: bool = False,
    **task_options: Any,
) -> Any:
    """``prefect.task`` with :class:`KacherySerializer`, a kachery cache policy and
    ``persist_result=True``.

    Use it bare (``@kachery_task``) or with any of ``prefect.task``'s keyword arguments
    (``@kachery_task(retries=2, version="3")``); they are passed through.

    Parameters
    ----------
    return_ref:
        Store the return value in kachery and return its :class:`~kachery_flows.Ref`
        instead: Prefect then persists, caches and ships (e.g. between Dask workers) only
        the Ref; downstream tasks take the Ref and ``.load()`` it. A Ref returned by the
        function itself is passed through.
    version:
        Prefect's task version. It becomes part of the cache key, which then follows
        the version instead of the source text (as with ``@kachery_cached(version=)``).
    cache_policy:
        Default: :data:`KACHERY_DEFAULT` (inputs, identity and source text), or
        ``KacheryInputs()`` when ``version`` is given. Pass e.g.
        ``KACHERY_DEFAULT.configure(isolation_level="SERIALIZABLE", lock_manager=...)``
        to compute once across processes.
    result_serializer:
        Default: ``KacherySerializer()`` (the default store of each process).
    artifact:
        Publish a Prefect markdown artifact per persisted result (its URI, size, codec,
        cache key and how to load it), shown on the task run's page in Prefect's UI:
        ``KacherySerializer(artifact=True)``. One API call per result; off by default.
    task_options:
        Any other ``prefect.task`` keyword argument (``retries``, ``name``, ``tags``,
        ``cache_expiration``, ``result_storage``, ``persist_result``...).
    """
    serializer = result_serializer if result_serializer is not None else KacherySerializer()
    if artifact:
        if not isinstance(serializer, KacherySerializer):
            raise TypeError(
                "kachery_task(artifact=True) needs the KacherySerializer, not "
                f"{type(serializer).__name__}"
            )
        serializer = serializer.model_copy(update={"artifact": True})
    if cache_policy is None:
        cache_policy = KACHERY_DEFAULT if version is None else KacheryInputs()
    options: dict[str, Any] = {
        "persist_result": True,
        **task_options,
        "version": version,
        "cache_policy": cache_policy,
        "result_serializer": serializer,
    }

    def decorate(f: Callable[..., Any]) -> Task[Any, Any]:
        if not callable(f):
            raise TypeError(f"@kachery_task expects a function, not {type(f).__name__}")
        body = _returning_ref(f, serializer) if return_ref else f
        return task(body, **options)

    if fn is not None:
        return decorate(fn)
    return decorate
