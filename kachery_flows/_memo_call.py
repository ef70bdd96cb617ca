"""One call of a memoized function, the same for the sync and the async wrapper.

:func:`begin` computes the key and looks it up: a hit returns at once (no generator, no
lock). On a miss it hands back a :class:`Miss`, whose :meth:`~Miss.steps` generator is the
rest of the call: take the key's compute lock (waiting while another process or thread
holds it, and returning that one's result as soon as it appears), look again under the
lock, compute, store the result (inline in the cache entry when it is small, see
:mod:`._inline`), write the provenance record and the cache entry, release the lock.

The generator neither calls the function nor sleeps: it yields a delay in seconds when
the driver must wait before it looks again, and :data:`COMPUTE` when the driver must call
the function now (and put the result in :attr:`Miss.result`). :func:`run_sync` and
:func:`run_async` are the two drivers; calling vs awaiting the function and ``time.sleep``
vs ``asyncio.sleep`` is all that tells the wrappers apart (as in joblib, whose async
memoized function is a thin layer over the shared hooks of the sync one).
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
from .action_cache import INLINE_ENTRY_MAX, ActionCache, CacheEntry, b64
from .records import build_record
from .uri import Ref

__all__ = ["COMPUTE", "Miss", "begin", "run_async", "run_sync"]

#: First and longest wait between two looks while another caller holds the key's lock.
_POLL_FIRST = 0.005
_POLL_MAX = 0.25

#: What :meth:`Miss.steps` yields when the driver must call the function (and put its
#: result in :attr:`Miss.result`).
COMPUTE = object()


def begin(
    fn: CachedBase[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any], want_ref: bool
) -> tuple[Any, Miss | None]:
    """``(value, None)`` on a hit, else ``(None, miss)``: the rest of the call, for
    :func:`run_sync` or :func:`run_async` to drive."""
    key, values, encodings = fn._key_material(args, kwargs)
    cache = fn._cache()
    value = _use(fn, cache, key, cache.get(key), want_ref)
    if value is not MISS:
        return value, None
    return None, Miss(fn, cache, key, values, encodings, want_ref)


def run_sync(
    miss: Miss, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Drive a miss: sleep while it waits for the lock, call ``func`` when it says
    :data:`COMPUTE`; the call's value (or Ref)."""
    with contextlib.closing(miss.steps()) as steps:  # an error in func releases the lock now
        for step in steps:
            if step is COMPUTE:
                miss.result = func(*args, **kwargs)
            else:
                time.sleep(step)
    return miss.value


async def run_async(
    miss: Miss, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """:func:`run_sync` for coroutine functions: awaits ``func`` and ``asyncio.sleep``."""
    import asyncio  # only async callers pay for importing it

    with contextlib.closing(miss.steps()) as steps:
        for step in steps:
            if step is COMPUTE:
                miss.result = await func(*args, **kwargs)
            else:
                await asyncio.sleep(step)
    return miss.value


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


class Miss:
    """A call that found no usable entry, and what finishing it takes: a driver runs
    :meth:`steps`, puts the function's result in :attr:`result` when they yield
    :data:`COMPUTE`, and then finds the call's value (or Ref) in :attr:`value`."""

    __slots__ = ("cache", "encodings", "fn", "key", "result", "value", "values", "want_ref")

    def __init__(
        self,
        fn: CachedBase[Any, Any],
        cache: ActionCache,
        key: str,
        values: dict[str, Any],
        encodings: list[bytes],
        want_ref: bool,
    ) -> None:
        self.fn = fn
        self.cache = cache
        self.key = key
        self.values = values
        self.encodings = encodings
        self.want_ref = want_ref
        self.result: Any = None
        self.value: Any = MISS

    def steps(self) -> Generator[Any, None, None]:
        """Lock the key (yielding delays while someone else holds it and nothing has
        appeared), look again under the lock, yield :data:`COMPUTE` to have the function
        called, then store its result and write its record, and release the lock."""
        fn, cache, key, want_ref = self.fn, self.cache, self.key, self.want_ref
        lock = cache.lock(key)
        delay = _POLL_FIRST
        while not lock.acquire():
            yield delay
            delay = min(delay * 2, _POLL_MAX)
            self.value = _use(fn, cache, key, cache.get(key), want_ref)
            if self.value is not MISS:
                return
        try:
            previous = cache.get(key)
            self.value = _use(fn, cache, key, previous, want_ref)
            if self.value is not MISS:
                return
            started = time.time()
            t0 = time.perf_counter()
            yield COMPUTE
            duration = time.perf_counter() - t0
            self.value = self._publish(self.result, duration, started, previous)
        finally:
            lock.release()

    def _publish(
        self, value: Any, duration: float, started: float, previous: CacheEntry | None
    ) -> Any:
        """Store ``value``, write its record and the key's cache entry; the value or its
        Ref."""
        fn, cache, key = self.fn, self.cache, self.key
        store = cache.store
        stem = fn._stem
        inline = None
        # an ordinary entry (whose objects were damaged or lost) stays ordinary
        if not self.want_ref and (previous is None or previous.result_data is not None):
            inline = inline_candidate(store.zone is not None, value, stem)
        stored = inline[0] if inline is not None else store_result(store, value, stem)
        record = build_record(
            key=key,
            function=fn.identity,
            version=fn.version,
            code=fn.code,
            closure=fn.closure,
            names=fn._names,
            values=self.values,
            encodings=self.encodings,
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
                hashlib.sha1(data).hexdigest(),
                stored.ref.sha1,
                codec,
                stored.size,
                None,
                b64(data),
                inline[1],
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
        return stored.ref if self.want_ref else value
