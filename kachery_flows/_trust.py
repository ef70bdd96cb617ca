"""The trust rule for memoized pickles: which pickled results a store may unpickle.

A store unpickles a memoized ``pkl`` result only if it pickled exactly those bytes itself,
or if it trusts its zone's pickles (:attr:`Store.trust_zone_pickles`). When it computes
one, it leaves a marker, ``marker_path(memo_trusted_dir(root), <result sha1>)`` (see
:mod:`kachery_flows._layout`); hits never create one. A pickle carried inline by an
entry of the store's own local ref map is vouched for by that entry and trusted for the
rest of the process, without a marker (see :meth:`ActionCache.trusts`).

The action cache (:mod:`kachery_flows.action_cache`) asks here, and hands
:func:`trusts_pickle` to the one pickle decoder of stored results
(:func:`kachery_flows.codecs.unpickle`) as its trust rule. What a store trusts in this
process is kept per :class:`~kachery_flows.store.Store` object.
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

__all__ = ["trust", "trust_in_process", "trusted_path", "trusts_pickle"]

#: Per store: the pickles trusted in this process (seen markers, vouched inline entries).
_in_process: weakref.WeakKeyDictionary[Store, set[str]] = weakref.WeakKeyDictionary()


def trusted_path(store: Store, sha1: str) -> Path:
    """The marker saying ``store`` pickled result ``sha1`` itself."""
    return marker_path(memo_trusted_dir(store.root), sha1)


def trusts_pickle(store: Store, sha1: str) -> bool:
    """Whether pickle ``sha1`` may be unpickled: ``store`` pickled those bytes itself
    (:func:`trust`), or it trusts its zone's pickles."""
    if store.trust_zone_pickles:
        return True
    trusted = _in_process.get(store)
    if trusted is not None and sha1 in trusted:
        return True
    if trusted_path(store, sha1).exists():
        trust_in_process(store, sha1)
        return True
    return False


def trust(store: Store, sha1: str) -> None:
    """Record that ``store`` pickled result ``sha1`` itself (when computing it)."""
    path = trusted_path(store, sha1)
    try:
        create_marker(path, group_shared=store.group_shared)
    except OSError as exc:
        raise StoreWriteError.from_os_error(exc, "mark as trusted", path) from exc
    trust_in_process(store, sha1)


def trust_in_process(store: Store, sha1: str) -> None:
    """Trust pickle ``sha1`` for ``store`` in this process only (no marker)."""
    _in_process.setdefault(store, set()).add(sha1)
