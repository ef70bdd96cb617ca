"""The trust rule for memoized pickles: which pickled results a store may unpickle.

A store unpickles a memoized ``pkl`` result only if it pickled exactly those bytes itself,
or if it trusts its zone's pickles (:attr:`Store.trust_zone_pickles`). When it computes
one, it leaves a marker, ``marker_path(memo_trusted_dir(root), <result sha1>)`` (see
:mod:`kachery_flows._layout`); hits never create one. A pickle carried inline by an
entry of the store's own local ref map is vouched for by that entry and trusted for the
rest of the process, without a marker (see :meth:`ActionCache.trusts`).

The action cache (:mod:`kachery_flows.action_cache`) and the one pickle decoder of stored
results (``kachery_flows._results.unpickle``) both ask here.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import TYPE_CHECKING

from ._atomic import create_marker
from ._layout import marker_path, memo_trusted_dir
from .errors import StoreWriteError

if TYPE_CHECKING:
    from .store import Store

__all__ = ["PickleTrust", "pickle_trust"]


class PickleTrust:
    """The pickled results one store trusts (see the module docs)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        #: Markers of the pickled results this store wrote.
        self.folder = memo_trusted_dir(store.root)
        self._trusted: set[str] = set()

    def path(self, sha1: str) -> Path:
        """The marker saying this store pickled result ``sha1`` itself."""
        return marker_path(self.folder, sha1)

    def trusts(self, sha1: str) -> bool:
        """Whether pickle ``sha1`` may be unpickled: this store pickled those bytes itself
        (:meth:`add`), or the store trusts its zone's pickles."""
        if self.store.trust_zone_pickles or sha1 in self._trusted:
            return True
        if self.path(sha1).exists():
            self._trusted.add(sha1)
            return True
        return False

    def add(self, sha1: str) -> None:
        """Record that this store pickled result ``sha1`` itself (when computing it)."""
        path = self.path(sha1)
        try:
            create_marker(path, group_shared=self.store.group_shared)
        except OSError as exc:
            raise StoreWriteError.from_os_error(exc, "mark as trusted", path) from exc
        self._trusted.add(sha1)

    def add_in_process(self, sha1: str) -> None:
        """Trust pickle ``sha1`` in this process only (no marker)."""
        self._trusted.add(sha1)


_trusts: weakref.WeakKeyDictionary[Store, PickleTrust] = weakref.WeakKeyDictionary()


def pickle_trust(store: Store) -> PickleTrust:
    """The (per-process, shared) :class:`PickleTrust` of ``store``."""
    trust = _trusts.get(store)
    if trust is None:
        trust = _trusts.setdefault(store, PickleTrust(store))
    return trust
