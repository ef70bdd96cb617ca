"""The reverse index of provenance: result hash -> the record that produced it.

One ref-map name per result, ``lineage/<result sha1>``, holds ``kfl1 <record sha1>``. It
lives in the store's ref map (:class:`kachery_flows.refmap.RefMap`): the zone's refs when
the store has a writable zone (so every machine using the zone finds what the others
computed), else the store's local ref map, whose reads fall back to a read-only zone's
refs. A lookup is one ref read, whatever the number of entries.

Who keeps it:

* the write path: every provenance record written for a memoized call
  (:meth:`kachery_flows.action_cache.ActionCache.put`), a Prefect result
  (``kachery_flows.prefect``) or a Dask checkpoint (``kachery_flows.dask.to_kachery``)
  names its result here; the last writer wins;
* garbage collection (:mod:`kachery_flows.garbage`), for a local map: it re-adds the entry
  of every live memo record (stores written before this index existed get indexed by one
  ``gc``), and drops the entries whose result or record it deleted. Zone entries are left
  alone, as gc never deletes from a zone.

Local entries are written without fsync: the index is derived data that ``gc`` rebuilds.
The action cache calls in here, so its types are imported for type checking only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from ._atomic import replace_small
from .uri import is_sha1_hex

if TYPE_CHECKING:
    from ._cache_entry import CacheEntry
    from .action_cache import ActionCache
    from .garbage import GCReport
    from .refmap import RefMap
    from .store import Store

__all__ = [
    "INDEX_PREFIX",
    "INDEX_TAG",
    "after_gc",
    "index_name",
    "lookup",
    "note_live",
    "note_producer",
]

#: First word of an index entry.
INDEX_TAG = "kfl1"
#: Ref-map folder of the index.
INDEX_PREFIX = "lineage"


def index_name(sha1: str) -> str:
    """The ref-map name of result ``sha1``'s index entry."""
    return f"{INDEX_PREFIX}/{sha1}"


def _decode(text: str) -> str | None:
    parts = text.split()
    if len(parts) == 2 and parts[0] == INDEX_TAG and is_sha1_hex(parts[1]):
        return parts[1]
    return None


def lookup(refs: RefMap, sha1: str) -> tuple[str | None, str | None]:
    """``(record sha1, problem)`` for result ``sha1``: ``(None, None)`` when nothing is
    indexed, ``(None, why)`` when the entry is not one this package wrote."""
    text = refs.get(index_name(sha1))
    if text is None:
        return None, None
    record = _decode(text)
    if record is None:
        return None, f"the index entry {index_name(sha1)} is damaged: {text[:100]!r}"
    return record, None


def note_producer(store: Store, refs: RefMap, result: str, record: str) -> None:
    """Point result ``result`` at the record ``record`` (both 40-hex hashes)."""
    text = f"{INDEX_TAG} {record}"
    local = refs.local
    if local is None:
        refs.set(index_name(result), text)
        return
    path = local.base / INDEX_PREFIX / result
    replace_small(
        store.staging_dir, path, text.encode("ascii"), fsync=False, group_shared=store.group_shared
    )


def note_live(cache: ActionCache, entry: CacheEntry, dry_run: bool) -> None:
    """gc: make sure a live memo entry's result is indexed (local maps only)."""
    refs = cache.refs
    if dry_run or refs.local is None or entry.result_data is not None:
        return
    if lookup(refs, entry.result)[0] != entry.record:
        note_producer(cache.store, refs, entry.result, entry.record)


def after_gc(cache: ActionCache, report: GCReport) -> None:
    """gc: drop the local entries whose result or record was just deleted."""
    local = cache.refs.local
    deleted = set(report.deleted_objects)
    if report.dry_run or local is None or not deleted:
        return
    folder = local.base / INDEX_PREFIX
    for sha1 in deleted:
        with suppress(OSError):
            (folder / sha1).unlink(missing_ok=True)
    for path in _entries(folder):
        try:
            record = _decode(path.read_text("ascii"))
        except (OSError, ValueError):
            continue
        if record in deleted:
            with suppress(OSError):
                path.unlink(missing_ok=True)


def _entries(folder: Path) -> Iterable[Path]:
    try:
        items = list(os.scandir(folder))
    except FileNotFoundError:
        return
    for item in items:
        if is_sha1_hex(item.name) and item.is_file(follow_symlinks=False):
            yield Path(item.path)
