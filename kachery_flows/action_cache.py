"""The action cache: memo key -> result, through entries in the store's ref map.

A computed call leaves three things behind:

* the **result**, a content-addressed object (see :mod:`kachery_flows._results`);
* the **record**, its provenance, stored as an object too (see :mod:`kachery_flows.records`);
* an **entry** in the store's ref map (:mod:`kachery_flows.refmap`), ``memo/<key>`` ->
  ``kfm1 <record> <result> <codec> <size> <array token>`` (:class:`CacheEntry`). It
  repeats what a hit needs, so a hit costs one ref lookup and one load.

The ref map is the zone's when a writable zone is configured, so a shared directory or
bucket shares the cache; otherwise it is local, and a read-only zone's entries are read
after the local ones.

Each store also keeps a local index of the keys this machine computed or used, one file
per key under :func:`kachery_flows._layout.memo_index_dir` (function and entry; the
file's mtime is the last use, refreshed at most every few minutes per process). It serves
:meth:`ActionCache.forget`, record expiry and garbage collection
(:mod:`kachery_flows.garbage`).

Trust: a hit unpickles a ``pkl`` result only if this store pickled exactly those bytes
itself (it leaves a marker, ``marker_path(memo_trusted_dir(root), <result sha1>)``, when it
computes one; hits never create one; a pickle carried inline by an entry of
the store's own local ref map is vouched for by that entry, see :mod:`._inline`), or if
the store trusts its zone's pickles (:attr:`Store.trust_zone_pickles`). Any other ``pkl``
entry, e.g. one a colleague wrote to a shared zone, is a miss: the call recomputes and
overwrites it, and nothing of it is unpickled. ``npy``, ``json`` and ``bytes`` results
run no code when loaded and need no trust.

Concurrent calls with one key compute once per host: :meth:`ActionCache.lock` is a lock
file in a shared-directory zone, else a byte-range lock in this store's lock table (see
:mod:`kachery_flows._lock`).
"""

from __future__ import annotations

import json
import logging
import os
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import codecs
from ._atomic import create_marker, replace_small
from ._cache_entry import (
    ENTRY_TAG,
    INLINE_ENTRY_MAX,
    INLINE_TAG,
    CacheEntry,
    b64,
    inline_record_bytes,
)
from ._inline import inline_value
from ._layout import lock_table_path, locks_dir, marker_path, memo_index_dir, memo_trusted_dir
from ._lineage_index import note_producer
from ._lock import FileLock
from ._range_lock import RangeLock, range_locks_supported
from ._results import MISS, load_result, result_exists
from .errors import DecodeError, StoreWriteError, UnsafePickleError
from .records import decode_record, read_record_object
from .refmap import RefMap
from .uri import Ref, is_sha1_hex

if TYPE_CHECKING:
    from .store import Store

__all__ = [
    "ENTRY_TAG",
    "INLINE_ENTRY_MAX",
    "INLINE_TAG",
    "ActionCache",
    "CacheEntry",
    "IndexEntry",
    "action_cache",
    "b64",
    "inline_record_bytes",
]

_TOUCH_INTERVAL = 300.0
_DECODED_MAX = 4096
_log = logging.getLogger("kachery_flows.memoize")


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """A key this machine computed or used."""

    key: str
    function: str | None
    entry: CacheEntry | None
    last_used: float


class ActionCache:
    """The action cache of one :class:`~kachery_flows.store.Store` (see the module docs)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        zone = store.zone
        self.refs = RefMap(store)
        self.index_dir = memo_index_dir(store.root)
        shared = zone.shared_lock_dir() if zone is not None else None
        shared_locks = shared is not None
        self.lock_dir = shared if shared is not None else locks_dir(store.root)
        #: The byte-range lock table of this host's locks (None: lock files).
        self.lock_table: Path | None = (
            lock_table_path(store.root) if not shared_locks and range_locks_supported() else None
        )
        self._touched: dict[str, float] = {}
        self._decoded: dict[str, CacheEntry] = {}
        self._root = str(store.root)
        #: Markers of the pickled results this store wrote (see the module docs).
        self.trusted_dir = memo_trusted_dir(store.root)
        #: Pickles trusted in this process (markers seen, inline entries vouched for).
        self._trusted: set[str] = set()
        self._distrust_logged: set[str] = set()

    # --------------------------------------------------------------- ref map
    @staticmethod
    def ref_name(key: str) -> str:
        """The ref-map name of a memo key."""
        return f"memo/{key}"

    def get(self, key: str) -> CacheEntry | None:
        """The entry of ``key``, or None (also when the ref is not an entry: a miss)."""
        text = self.refs.get(f"memo/{key}")
        if text is None:
            return None
        # Equal text decodes to an equal entry: hits skip re-checking an inline entry's bytes.
        entry = self._decoded.get(text)
        if entry is None:
            entry = CacheEntry.decode(text)
            if entry is not None:
                if len(self._decoded) >= _DECODED_MAX:
                    self._decoded.clear()
                self._decoded[text] = entry
        return entry

    def _set(self, key: str, entry: CacheEntry | None) -> None:
        self.refs.set(self.ref_name(key), entry.encode() if entry is not None else None)

    def put(self, key: str, function: str, entry: CacheEntry) -> None:
        """Point ``key`` at ``entry`` (the result and record must already be stored)."""
        self._set(key, entry)
        self._write_index(key, function, entry)
        if entry.result_data is None:
            # An inline result has no URI outside the cache yet: it is indexed for lineage
            # when it is materialized, so the inline miss stays one write.
            note_producer(self.store, self.refs, entry.result, entry.record)

    def forget(self, key: str) -> bool:
        """Remove ``key``'s entry and index entry; True if there was an entry."""
        existed = self.get(key) is not None
        self._set(key, None)
        self.index_path(key).unlink(missing_ok=True)
        self._touched.pop(key, None)
        return existed

    def lock(self, key: str) -> FileLock | RangeLock:
        """The compute lock of ``key``: a lock file in the shared directory when the zone
        is one, else a byte-range lock in this store's lock table (see :mod:`._lock`)."""
        if self.lock_table is not None:
            return RangeLock(self.lock_table, key, group_shared=self.store.group_shared)
        return FileLock(self.lock_dir / f"{key}.lock", group_shared=self.store.group_shared)

    # ----------------------------------------------------------------- trust
    def trusted_path(self, sha1: str) -> Path:
        """The marker saying this store pickled result ``sha1`` itself."""
        return marker_path(self.trusted_dir, sha1)

    def trusts(self, entry: CacheEntry) -> bool:
        """Whether a hit may load the entry's result (see the module docs)."""
        return entry.codec != "pkl" or self.trusts_pickle(entry.result) or self._vouched(entry)

    def _vouched(self, entry: CacheEntry) -> bool:
        """An inline pickle carried by an entry of this store's own ref map: bytes this
        store pickled itself (the local file is read again to tell it from a read-only
        zone's entry); trusted for the rest of the process."""
        local = self.refs.local
        data = inline_record_bytes(entry) if local is not None else None
        record = decode_record(data, "inline record") if data is not None else None
        key = record.get("key") if record is not None else None
        if local is None or not isinstance(key, str) or not is_sha1_hex(key):
            return False
        text = local.get(self.ref_name(key))
        if text is None or CacheEntry.decode(text) != entry:
            return False
        self.trust_inline(entry.result)
        return True

    def trusts_pickle(self, sha1: str) -> bool:
        """Whether pickle ``sha1`` may be unpickled: this store pickled those bytes itself
        (:meth:`trust`), or the store trusts its zone's pickles."""
        if self.store.trust_zone_pickles or sha1 in self._trusted:
            return True
        if self.trusted_path(sha1).exists():
            self._trusted.add(sha1)
            return True
        return False

    def trust(self, sha1: str) -> None:
        """Record that this store pickled result ``sha1`` itself (when computing it)."""
        path = self.trusted_path(sha1)
        try:
            create_marker(path, group_shared=self.store.group_shared)
        except OSError as exc:
            raise StoreWriteError.from_os_error(exc, "mark as trusted", path) from exc
        self._trusted.add(sha1)

    def trust_inline(self, sha1: str) -> None:
        """Trust pickle ``sha1`` in this process: this store just pickled it into an inline
        entry of its own ref map (which vouches for it in other processes; no marker)."""
        self._trusted.add(sha1)

    def _log_distrust(self, entry: CacheEntry) -> None:
        if entry.result in self._distrust_logged:
            return
        self._distrust_logged.add(entry.result)
        zone = self.refs.zone or self.store.zone
        where = f"zone {zone.name}" if zone is not None else "the store's ref map"
        _log.info(
            "not unpickling memoized result sha1://%s from %s: this store did not pickle "
            "it; recomputing. If you trust everyone who can write there, set "
            '"trust_pickles": true for the zone in zones.json or '
            "KACHERY_FLOWS_TRUST_ZONE_PICKLES=1 (see SECURITY.md).",
            entry.result,
            where,
        )

    # --------------------------------------------------------------- results
    def load(self, entry: CacheEntry) -> Any:
        """The result value, or ``MISS`` if it is missing, corrupt or an untrusted
        pickle."""
        if not self.trusts(entry):
            self._log_distrust(entry)
            return MISS
        if entry.result_data is not None:
            return inline_value(entry.codec, entry.result_data)
        try:
            return load_result(
                self.store,
                self._root,
                entry.result,
                entry.codec,
                entry.size,
                entry.array_token,
                self.trusts_pickle,
            )
        except (DecodeError, UnsafePickleError) as exc:
            # Intact bytes that no longer decode (a class changed, a planted entry with
            # the wrong codec): recompute; the object stays where it is.
            _log.info(
                "memoized result sha1://%s does not load (%s); recomputing", entry.result, exc
            )
            return MISS

    def present(self, entry: CacheEntry) -> bool:
        """Whether the entry's result object exists (not loaded), or is inline."""
        if entry.result_data is not None:
            return True
        return result_exists(self.store, self._root, entry.result, entry.size)

    def write_record(self, record: dict[str, Any]) -> Ref:
        """Store a record object (marked as an action-cache object)."""
        data = codecs.encode_json(record)
        return self.store.write_object(lambda w: w.write(data), "json", collectable=True)

    def materialize(self, key: str, entry: CacheEntry, label: str | None = None) -> CacheEntry:
        """Write an inline entry's result and record as ordinary (marked) objects, so their
        URIs work everywhere, and make the entry an ordinary one naming them (from then on
        the objects are the truth, and a damaged one is recomputed and repaired); other
        entries are returned as they are (see :mod:`._inline`)."""
        result = entry.result_data
        record = inline_record_bytes(entry)
        if record is None or result is None:
            return entry
        if entry.codec == "pkl":
            self.trust(entry.result)  # the object, unlike the entry, needs its marker
        put = self.store.write_object
        put(lambda w: w.write(result), entry.codec, label, collectable=True)
        put(lambda w: w.write(record), "json", collectable=True)
        plain = CacheEntry(entry.record, entry.result, entry.codec, entry.size)
        self._set(key, plain)
        note_producer(self.store, self.refs, entry.result, entry.record)
        return plain

    def read_record(self, entry: CacheEntry) -> dict[str, Any] | None:
        """The record of an entry, or None if it cannot be read."""
        if entry.record_b64 is not None:
            data = inline_record_bytes(entry)
            return decode_record(data, "inline record") if data is not None else None
        return read_record_object(self.store, entry.record)

    # ----------------------------------------------------------------- index
    def index_path(self, key: str) -> Path:
        """The local index file of ``key``."""
        return marker_path(self.index_dir, key)

    def _write_index(self, key: str, function: str | None, entry: CacheEntry) -> None:
        data = json.dumps({"function": function, "entry": entry.encode()}).encode()
        replace_small(
            self.store.staging_dir,
            self.index_path(key),
            data,
            fsync=False,
            group_shared=self.store.group_shared,
        )
        self._touched[key] = time.monotonic()

    def note_use(self, key: str, function: str, entry: CacheEntry) -> None:
        """Record that ``key`` was used now (cheap: at most once per interval per process)."""
        now = time.monotonic()
        if now - self._touched.get(key, -_TOUCH_INTERVAL) < _TOUCH_INTERVAL:
            return
        self._touched[key] = now
        try:
            try:
                os.utime(self.index_path(key))
            except FileNotFoundError:
                self._write_index(key, function, entry)
        except OSError:
            pass  # a read-only or full store: hits still work, only last-use goes unrecorded

    def iter_index(self) -> Iterator[IndexEntry]:
        """Every key in the local index."""
        try:
            shards = sorted(os.scandir(self.index_dir), key=lambda e: e.name)
        except FileNotFoundError:
            return
        for shard in shards:
            if not shard.is_dir(follow_symlinks=False):
                continue
            for item in os.scandir(shard.path):
                if not is_sha1_hex(item.name):
                    continue
                path = Path(item.path)
                try:
                    last_used = item.stat().st_mtime
                    info = json.loads(path.read_bytes())
                except (OSError, ValueError, RecursionError):
                    continue
                function = info.get("function") if isinstance(info, dict) else None
                text = info.get("entry") if isinstance(info, dict) else None
                yield IndexEntry(
                    item.name,
                    function if isinstance(function, str) else None,
                    CacheEntry.decode(text) if isinstance(text, str) else None,
                    last_used,
                )

    def local_keys(self) -> Iterator[str]:
        """Keys in the local ref map (none when the ref map is a zone's)."""
        if self.refs.local is None:
            return
        for name in self.refs.local.names("memo"):
            key = name.rsplit("/", 1)[1]
            if is_sha1_hex(key):
                yield key


_caches: weakref.WeakKeyDictionary[Store, ActionCache] = weakref.WeakKeyDictionary()


def action_cache(store: Store) -> ActionCache:
    """The (per-process, shared) :class:`ActionCache` of ``store``."""
    cache = _caches.get(store)
    if cache is None:
        cache = _caches.setdefault(store, ActionCache(store))
    return cache
