"""One call of a memoized function, the same for the sync and the async wrapper.

:func:`begin` computes the key and looks it up: a hit returns at once (no generator, no
lock). On a miss it hands back :func:`miss_steps`, the rest of the call as a generator:
take the key's compute lock (waiting while another process or thread holds it, and
returning that one's result as soon as it appears), look again under the lock, compute,
store the result (inline in the cache entry when it is small, see :mod:`._inline`), write
the provenance record and the cache entry, release the lock.

The generator neither calls the function nor sleeps: it yields a delay in seconds when
the driver must wait before it looks again, and :data:`COMPUTE` when the driver must call
the function now and send the result back. :func:`run_sync` and :func:`run_async` are the
two drivers; calling vs awaiting the function and ``time.sleep`` vs ``asyncio.sleep`` is
all that tells the wrappers apart (as in joblib, whose async memoized function is a thin
layer over the shared hooks of the sync one).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Generator
from typing import Any

from . import codecs
from ._inline import inline_candidate
from ._memo_base import CachedBase
from ._results import MISS, store_result
from .records import INLINE_ENTRY_MAX, ActionCache, CacheEntry, b64, build_record
from .uri import Ref

__all__ = ["COMPUTE", "MissSteps", "begin", "miss_steps", "run_async", "run_sync"]

#: First and longest wait between two looks while another caller holds the key's lock.
_POLL_FIRST = 0.005
_POLL_MAX = 0.25

#: What :func:`miss_steps` yields when the driver must call the function (and send back
#: its result).
COMPUTE = object()

#: A miss as steps: yields a delay in seconds (wait, then go on) or :data:`COMPUTE`;
#: returns the call's value (or Ref).
MissSteps = Generator[Any, Any, Any]


def begin(
    fn: CachedBase[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any], want_ref: bool
) -> tuple[Any, MissSteps | None]:
    """``(value, None)`` on a hit, else ``(None, steps)``: the rest of the call, for
    :func:`run_sync` or :func:`run_async` to drive."""
    key, values, encodings = fn._key_material(args, kwargs)
    cache = fn._cache()
    value = _use(fn, cache, key, cache.get(key), want_ref)
    if value is not MISS:
        return value, None
    return None, miss_steps(fn, cache, key, values, encodings, want_ref)


def miss_steps(
    fn: CachedBase[Any, Any],
    cache: ActionCache,
    key: str,
    values: dict[str, Any],
    encodings: list[bytes],
    want_ref: bool,
) -> MissSteps:
    """Lock the key (yielding delays while someone else holds it and nothing has appeared),
    look again under the lock, yield :data:`COMPUTE` to have the function called, then
    store its result and write its record; returns the value or Ref."""
    lock = cache.lock(key)
    delay = _POLL_FIRST
    while not lock.acquire():
        yield delay
        delay = min(delay * 2, _POLL_MAX)
        value = _use(fn, cache, key, cache.get(key), want_ref)
        if value is not MISS:
            return value
    try:
        previous = cache.get(key)
        value = _use(fn, cache, key, previous, want_ref)
        if value is not MISS:
            return value
        started = time.time()
        t0 = time.perf_counter()
        result = yield COMPUTE
        duration = time.perf_counter() - t0
        return _publish(
            fn, cache, key, values, encodings, result, duration, started, want_ref, previous
        )
    finally:
        lock.release()


def run_sync(
    steps: MissSteps, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Drive a miss: sleep when ``steps`` waits for the lock, call ``func`` when it says
    :data:`COMPUTE`."""
    reply: Any = None
    with contextlib.closing(steps):  # if func raises, the key's lock is released at once
        while True:
            try:
                step = steps.send(reply)
            except StopIteration as done:
                return done.value
            if step is COMPUTE:
                reply = func(*args, **kwargs)
            else:
                time.sleep(step)


async def run_async(
    steps: MissSteps, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """:func:`run_sync` for coroutine functions: awaits ``func`` and ``asyncio.sleep``."""
    import asyncio  # only async callers pay for importing it

    reply: Any = None
    with contextlib.closing(steps):
        while True:
            try:
                step = steps.send(reply)
            except StopIteration as done:
                return done.value
            if step is COMPUTE:
                reply = await func(*args, **kwargs)
            else:
                await asyncio.sleep(step)


def _use(
    fn: CachedBase[Any, Any],
    cache: ActionCache,
    key: str,
    entry: CacheEntry | None,
    want_ref: bool,
) -> Any:
    """The value (or Ref) of ``entry``, or MISS."""
    if entry is None:
        return MISS
    if want_ref:
        if not cache.present(entry):
            return MISS
        entry = cache.materialize(key, entry, fn._result_name(entry.codec))
        value: Any = Ref(entry.result, fn._result_name(entry.codec), entry.codec)
    else:
        value = cache.load(entry)
        if value is MISS:
            return MISS
    cache.note_use(key, fn.identity, entry)
    return value


def _publish(
    fn: CachedBase[Any, Any],
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
    """Store ``value``, write its record and the key's cache entry; the value or its Ref."""
    store = cache.store
    stem = fn._stem
    inline = None
    # an ordinary entry (whose objects were damaged or lost) stays ordinary
    if not want_ref and (previous is None or previous.result_data is not None):
        inline = inline_candidate(store.zone is not None, value, stem)
    stored = inline[0] if inline is not None else store_result(store, value, stem)
    record = build_record(
        key=key,
        function=fn.identity,
        version=fn.version,
        code=fn.code,
        closure=fn.closure,
        names=fn._names,
        values=values,
        encodings=encodings,
        ignored=fn.ignore,
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
            store_result(store, value, stem)  # too big together: ordinary objects
        elif codec == "pkl":
            cache.trust_inline(stored.ref.sha1)
    if entry is None:
        if codec == "pkl":
            cache.trust(stored.ref.sha1)
        record_ref = cache.write_record(record)
        entry = CacheEntry(
            record_ref.sha1, stored.ref.sha1, codec, stored.size, stored.array_token
        )
    cache.put(key, fn.identity, entry)
    return stored.ref if want_ref else value
