"""The default store, as seen from below :mod:`kachery_flows.store`.

:class:`~kachery_flows.uri.Ref` is a value type: the store imports :mod:`kachery_flows.uri`,
never the reverse. ``Ref.load()`` and ``Ref.path()`` without ``store=`` still need the
default store, so the dependency is inverted here: :mod:`kachery_flows.store` registers its
:func:`~kachery_flows.store.get_default_store` with :func:`register` when it is imported,
and :mod:`kachery_flows.uri` asks :func:`default_store`. Importing any submodule runs
``kachery_flows/__init__.py`` first, which imports the store, so the accessor is always
registered before a Ref can be loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["DefaultStore", "default_store", "register"]


class DefaultStore(Protocol):
    """What a Ref needs of a store (:class:`~kachery_flows.store.Store` provides it)."""

    def load(self, uri: Any, codec: str = "bytes", **kwargs: Any) -> Any:
        """Load with a named codec."""

    def load_file(self, uri: Any) -> str:
        """A local path holding the object."""


_accessor: list[Callable[[], DefaultStore]] = []


def register(accessor: Callable[[], DefaultStore]) -> None:
    """Make ``accessor`` the source of the default store (called by the store module)."""
    _accessor[:] = [accessor]


def default_store() -> DefaultStore:
    """The store built from the environment (see :func:`kachery_flows.get_default_store`)."""
    return _accessor[0]()
