"""Lazily started helper threads that keep working in a forked child.

A thread does not survive ``fork()``: a child that inherits an executor whose worker is
gone (or a lock some other thread held at that moment) waits forever on its first job.
``multiprocessing`` forks by default on Linux, so every helper thread of the package is a
:class:`BackgroundThread`, which forgets its executor in a forked child and starts a
fresh one on the child's first job.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

__all__ = ["BackgroundThread"]

P = ParamSpec("P")
T = TypeVar("T")


class BackgroundThread:
    """One worker thread, started on the first :meth:`submit` (again after a fork)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        _instances.add(self)

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` on the thread."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.name)
            executor = self._executor
        return executor.submit(fn, *args, **kwargs)

    def _forget(self) -> None:
        self._executor = None
        self._lock = threading.Lock()


_instances: weakref.WeakSet[BackgroundThread] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for thread in list(_instances):
        thread._forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
