"""Garbage collection of the local store: orphan temp files and unreachable cache objects.

What :func:`collect_garbage` may delete, and only once older than the grace period:

* orphan temp files left by killed writers, and abandoned lock files;
* objects the action cache wrote (memo results and records, marked under
  ``<root>/.kachery-flows/memo/objects/``) that no live record reaches: not the record
  object itself, not its result, not a URI inside the result, not an input ref;
* the trust markers of pickled results whose objects are gone from the local store
  (``<root>/.kachery-flows/memo/trusted/``, see :mod:`kachery_flows.action_cache`): a marker
  names bytes this store pickled, which stays true while the object exists.

It never deletes an object stored with ``store_*`` (those are never marked, and storing
marked bytes again removes the mark: their URIs may have been shared), and never anything
in a zone: with a zone, local copies are just a cache of what the zone keeps.

A live entry whose record cannot be read (missing here and in the zone, or corrupt) might
reach objects that nothing else names: then no object and no trust marker is deleted
(the report lists the entries in ``unreadable_records``; clear them, or restore their
records, to let gc collect again). Temp and lock files are still removed.

Records are live until an explicit policy expires them: ``expire_records_days`` forgets the
entries not used on this machine for that many days, least recently used first. With a
writable zone the entries live in the zone (other machines may use them), so expiry only
drops this machine's index entry, which lets the local copies go.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _lineage_index
from ._layout import locks_dir, memo_marks_dir, object_key
from ._scan import subdirs
from .action_cache import ActionCache, action_cache
from .records import reached_by
from .store import Store, get_default_store
from .uri import is_sha1_hex

__all__ = ["GCReport", "collect_garbage"]

_DAY = 86400.0


@dataclass
class GCReport:
    """What :func:`collect_garbage` did (or, with ``dry_run``, would do)."""

    dry_run: bool
    live_records: int = 0
    expired_records: list[str] = field(default_factory=list)
    deleted_objects: list[str] = field(default_factory=list)
    deleted_bytes: int = 0
    kept_recent: list[str] = field(default_factory=list)
    removed_temp_files: list[str] = field(default_factory=list)
    removed_lock_files: list[str] = field(default_factory=list)
    removed_trust_markers: list[str] = field(default_factory=list)
    unreadable_records: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary."""
        return {
            "dry_run": self.dry_run,
            "live_records": self.live_records,
            "expired_records": self.expired_records,
            "deleted_objects": self.deleted_objects,
            "deleted_bytes": self.deleted_bytes,
            "kept_recent": self.kept_recent,
            "removed_temp_files": self.removed_temp_files,
            "removed_lock_files": self.removed_lock_files,
            "removed_trust_markers": self.removed_trust_markers,
            "unreadable_records": self.unreadable_records,
        }


def _expire(cache: ActionCache, cutoff: float, report: GCReport) -> set[str]:
    expired: set[str] = set()
    for item in sorted(cache.iter_index(), key=lambda i: i.last_used):
        if item.last_used >= cutoff:
            break
        report.expired_records.append(item.key)
        expired.add(item.key)
        if not report.dry_run:
            cache.forget(item.key)
    return expired


def _live_objects(cache: ActionCache, expired: set[str], report: GCReport) -> set[str]:
    keys = set(_index_keys(cache)) | set(cache.local_keys())
    live: set[str] = set()
    for key in sorted(keys - expired):
        entry = cache.get(key)
        if entry is None:
            if not report.dry_run:
                cache.index_path(key).unlink(missing_ok=True)  # cleared elsewhere
            continue
        report.live_records += 1
        live.update((entry.record, entry.result))
        _lineage_index.note_live(cache, entry, report.dry_run)
        record = cache.read_record(entry)
        if record is None:
            report.unreadable_records.append(key)
        live.update(reached_by(record))
    return live


def _index_keys(cache: ActionCache) -> Iterator[str]:
    """The keys in the local index, from the file names alone (nothing is read)."""
    for sha1, _path in _markers(cache.index_dir):
        yield sha1


def _markers(base: Path) -> Iterator[tuple[str, str]]:
    """``(sha1, path)`` of the marker files ``<base>/aa/<sha1>``, one shard in memory at a
    time."""
    for shard in subdirs(str(base)):
        with os.scandir(shard) as entries:
            names = sorted(e.name for e in entries if is_sha1_hex(e.name))
        for name in names:
            yield name, f"{shard}/{name}"


def _old(path: str, cutoff: float) -> bool:
    try:
        return os.stat(path).st_mtime < cutoff
    except FileNotFoundError:
        return False


def collect_garbage(
    store: Store | None = None,
    *,
    older_than_days: float = 1.0,
    expire_records_days: float | None = None,
    dry_run: bool = False,
) -> GCReport:
    """Remove orphan temp files and cache objects no live record reaches (see module docs).

    ``older_than_days`` is the grace period: nothing younger is deleted, so a computation
    that has written its result but not yet its record is safe.
    """
    store = store if store is not None else get_default_store()
    cache = action_cache(store)
    report = GCReport(dry_run=dry_run)
    now = time.time()
    cutoff = now - older_than_days * _DAY
    expired: set[str] = set()
    if expire_records_days is not None:
        expired = _expire(cache, now - expire_records_days * _DAY, report)
    live = _live_objects(cache, expired, report)

    root = str(store.root)
    for sha1, marker in [] if report.unreadable_records else _markers(memo_marks_dir(store.root)):
        if sha1 in live:
            continue
        obj = f"{root}/{object_key(sha1)}"
        try:
            st = os.stat(obj)
        except FileNotFoundError:
            if not dry_run:
                Path(marker).unlink(missing_ok=True)
            continue
        if not (st.st_mtime < cutoff and _old(marker, cutoff)):
            report.kept_recent.append(sha1)
            continue
        report.deleted_objects.append(sha1)
        report.deleted_bytes += st.st_size
        if not dry_run:
            Path(obj).unlink(missing_ok=True)
            Path(marker).unlink(missing_ok=True)
    # A trust marker stays true as long as bytes with its hash exist (they are the bytes
    # this store pickled), so it goes only with its object; a live entry's stays while
    # the object is only evicted to the zone (see kachery_flows._evict).
    deleted = set(report.deleted_objects)
    for sha1, marker in [] if report.unreadable_records else _markers(cache.trusted_dir):
        gone = sha1 in deleted or not os.path.exists(f"{root}/{object_key(sha1)}")
        if gone and sha1 not in live and _old(marker, cutoff):
            report.removed_trust_markers.append(sha1)
            if not dry_run:
                Path(marker).unlink(missing_ok=True)

    for temp in store.iter_temp_files():
        if _old(str(temp), cutoff):
            report.removed_temp_files.append(str(temp))
            if not dry_run:
                temp.unlink(missing_ok=True)
    lock_dir = locks_dir(store.root)
    for lock in sorted(lock_dir.iterdir()) if lock_dir.is_dir() else []:
        if _old(str(lock), cutoff):
            report.removed_lock_files.append(str(lock))
            if not dry_run:
                lock.unlink(missing_ok=True)
    _lineage_index.after_gc(cache, report)
    return report
