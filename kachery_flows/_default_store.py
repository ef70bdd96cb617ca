"""The default store: built from the environment's settings, cached, and reachable from
below :mod:`kachery_flows.store`.

:class:`~kachery_flows.uri.Ref` is a value type: the store imports :mod:`kachery_flows.uri`,
never the reverse. ``Ref.load()`` and ``Ref.path()`` without ``store=`` still need the
default store, so the dependency is inverted here: :mod:`kachery_flows.store` registers how
a store is built from :class:`~kachery_flows.config.Settings` (:func:`register`) when it is
imported, and both :func:`kachery_flows.get_default_store` and :mod:`kachery_flows.uri` ask
:func:`default_store`. Importing any submodule runs ``kachery_flows/__init__.py`` first,
which imports the store, so the builder is registered before a Ref can be loaded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from .config import Settings, load_settings, settings_fingerprint

__all__ = ["DefaultStore", "default_store", "register"]


class DefaultStore(Protocol):
    """What a Ref needs of a store (:class:`~kachery_flows.store.Store` provides it)."""

    def load(self, uri: Any, codec: str = "bytes", **kwargs: Any) -> Any:
        """Load with a named codec."""

    def load_file(self, uri: Any) -> str:
        """A local path holding the object."""


_builder: list[Callable[[Settings], DefaultStore]] = []
_lock = threading.Lock()
_by_settings: tuple[tuple[Any, ...], DefaultStore] | None = None
_by_fingerprint: tuple[tuple[str | None, ...], DefaultStore] | None = None


def register(build: Callable[[Settings], DefaultStore]) -> None:
    """Make ``build`` how the default store is built (called by the store module)."""
    _builder[:] = [build]


def default_store() -> DefaultStore:
    """The store built from the environment (``KACHERY_CLOUD_DIR``, ``KACHERY_ZONE``, ...).

    The environment is re-read on every call (cheaply, see
    :func:`~kachery_flows.config.settings_fingerprint`), so changing it takes effect at
    once; the store is rebuilt only when the settings change.
    """
    global _by_settings, _by_fingerprint
    fingerprint = settings_fingerprint()
    cached = _by_fingerprint
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    settings = load_settings()
    key = (
        settings.root,
        settings.zone,
        settings.fsync,
        settings.multi_user,
        settings.retry_seconds,
        settings.trust_zone_pickles,
        settings.max_size,
    )
    with _lock:
        if _by_settings is None or _by_settings[0] != key:
            _by_settings = (key, _builder[0](settings))
        store = _by_settings[1]
        _by_fingerprint = (fingerprint, store)
        return store
