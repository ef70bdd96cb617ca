"""Passing URIs between tasks: tasks return :class:`~kachery_flows.Ref`\\ s, and the tasks
that consume them load the data on their own worker, from the shared store.

::

    @kachery_cached(return_ref=True)     # the result is stored; the task returns its Ref
    @load_refs                           # Ref arguments arrive loaded (arrays memory-mapped)
    def bandpass(x, lo, hi): ...

    raw = client.submit(make_recording, seed)          # a future of a Ref (~100 bytes)
    filtered = client.submit(bandpass, raw, 300, 6000)  # loads raw on its own worker

Put ``@load_refs`` *under* ``@kachery_cached``: the memo key is then made from the Refs
(their hashes: microseconds) rather than from the loaded data.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, overload

from ..store import Store, get_default_store
from ..uri import Ref, parse_uri

__all__ = ["load_ref", "load_refs"]

P = ParamSpec("P")
R = TypeVar("R")


def load_ref(ref: str | Ref, *, store: Store | None = None, trusted: bool = False) -> Any:
    """Load a stored object the way a task wants it: arrays memory-mapped read-only.

    The codec is the one recorded on the Ref (as ``@kachery_cached(return_ref=True)`` and
    ``store_*`` return them), else guessed from the label's suffix, else raw bytes.

    Parameters
    ----------
    ref:
        A :class:`~kachery_flows.Ref` or URI.
    store:
        Where to load from; default: this process's (on a worker: the worker's) default
        store, which fetches from the zone and verifies what it fetches.
    trusted:
        Unpickle ``pkl`` objects without the safe allow-list (only for objects written by
        code you trust, e.g. your own cached functions returning custom classes).
    """
    ref = parse_uri(ref)
    codec = ref.guess_codec() or "bytes"
    kwargs: dict[str, Any] = {}
    if codec == "npy":
        kwargs["mmap_mode"] = "r"
    elif codec == "pkl":
        kwargs["trusted"] = trusted
    target = store if store is not None else get_default_store()
    return target.load(ref, codec, **kwargs)


def _resolve(value: Any, trusted: bool) -> Any:
    cls = type(value)
    if cls is Ref:
        return load_ref(value, trusted=trusted)
    if cls is list or cls is tuple:
        return cls(_resolve(v, trusted) for v in value)
    if cls is dict:
        return {k: _resolve(v, trusted) for k, v in value.items()}
    return value


@overload
def load_refs(func: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def load_refs(*, trusted: bool = ...) -> Callable[[Callable[P, R]], Callable[P, R]]: ...
def load_refs(func: Callable[..., Any] | None = None, /, *, trusted: bool = False) -> Any:
    """Decorate a task function so that its :class:`~kachery_flows.Ref` arguments arrive
    loaded (see :func:`load_ref`): arrays memory-mapped read-only from the worker's store.

    Refs are loaded when they are arguments, or items of list, tuple and dict arguments
    (at any depth); URI strings are left alone. Everything else passes through, so the
    function also works when called with the data itself. Works on ``async def``
    functions too.

    Under ``@kachery_cached`` (the usual place) the memo key is computed from the Refs,
    i.e. from their hashes, before anything is loaded; the code fingerprint is the
    decorated function's own source.

    Parameters
    ----------
    trusted:
        Passed to :func:`load_ref` for ``pkl`` objects.
    """

    def decorate(f: Callable[..., Any]) -> Any:
        if inspect.iscoroutinefunction(f):

            @functools.wraps(f)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await f(*_resolve(args, trusted), **_resolve(kwargs, trusted))

            return async_wrapper

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return f(*_resolve(args, trusted), **_resolve(kwargs, trusted))

        return wrapper

    if func is not None:
        return decorate(func)
    return decorate
