"""Per-thread ``requests`` sessions for zones that talk HTTP."""

from __future__ import annotations

import threading
from typing import Any

import requests

__all__ = ["ThreadSessions"]


class ThreadSessions:
    """Mixin: one :class:`requests.Session` per thread, kept out of pickles.

    Sessions stay with the process that made them, so a zone pickled for a Dask worker or
    a subprocess opens its own. Call :meth:`_init_sessions` from ``__init__``.
    """

    _local: threading.local

    def _init_sessions(self) -> None:
        self._local = threading.local()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_local"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_sessions()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
        return session
