"""Size-bounded local stores: evict least-recently-used objects that the zone holds.

A local store in front of a zone (a worker's scratch disk in front of S3) is a cache of
the zone. :func:`prune` brings it under a size bound by deleting local copies, oldest
access first, but only copies that are safe to drop:

* the zone is asked, object by object, whether it holds the object (for a directory zone:
  a regular file of the same size; for S3: a key of the same size; other zones: ``has``).
  An object only this store has (``store_*_local``, a result not yet uploaded, a store
  without a zone) is never evicted;
* an object that a process on this machine has open or memory-mapped is skipped: the
  ``/proc/<pid>/fd`` and ``/proc/<pid>/maps`` of every process this user can read are
  scanned once per pass (the cost grows with the number of processes, not of objects).
  Deleting such a file would free no space anyway while it is in use. Processes of other
  users cannot be seen; their open files and mappings keep working after the entry is
  removed (POSIX keeps an unlinked file's bytes until the last descriptor or mapping is
  gone), and their next ``load_*`` of the object fetches it from the zone again.

Access times: the file's atime, as the kernel keeps it (with ``relatime``, the default
mount option on Linux, the first read after a write and then at most one update a day),
and reads through ``Store.load_*`` in this process, which :class:`AccessLog` notes in
memory (a dict assignment per read, no I/O) and writes back as atimes in batches on a
helper thread, so other processes (``kachery-flows prune``) see them too.

A :class:`Bound` makes a store evict as it grows: every object the store adds is counted
(an integer addition on the write path); when the running total passes ``max_size`` the
store is pruned, down to :data:`LOW_WATER` of the bound, so passes are rare.
"""

from __future__ import annotations

import heapq
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._background import BackgroundThread
from ._layout import OBJECTS_DIR, object_key
from ._scan import iter_objects
from .config import parse_size
from .zones.base import Progress

if TYPE_CHECKING:
    from .store import Store

__all__ = [
    "LOW_WATER",
    "AccessLog",
    "Bound",
    "PruneReport",
    "open_objects",
    "prune",
    "store_size",
]

#: A store pruned because it passed its bound is brought down to this fraction of it.
LOW_WATER = 0.9
_FLUSH_EVERY = 4096
# The first pass keeps at least this many of the oldest objects as candidates, so that a
# prune usually needs one pass over the store.
_FIRST_BATCH = 65536
_FLUSH_SECONDS = 30.0
_flusher = BackgroundThread("kachery-atime")


@dataclass
class PruneReport:
    """What :func:`prune` did (or, with ``dry_run``, would do)."""

    dry_run: bool
    max_size: int
    objects: int = 0
    size_before: int = 0
    size_after: int = 0
    evicted: int = 0
    evicted_bytes: int = 0
    kept_local_only: int = 0
    kept_open: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the store is (or would be) within the bound."""
        return self.size_after <= self.max_size

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary."""
        return {
            "ok": self.ok,
            "dry_run": self.dry_run,
            "max_size": self.max_size,
            "objects": self.objects,
            "size_before": self.size_before,
            "size_after": self.size_after,
            "evicted": self.evicted,
            "evicted_bytes": self.evicted_bytes,
            "kept_local_only": self.kept_local_only,
            "kept_open": self.kept_open,
            "seconds": round(self.seconds, 3),
        }


class AccessLog:
    """Reads of local objects by this process, kept in memory and written back as atimes
    in batches (every 4096 distinct objects or 30 s) on a helper thread."""

    def __init__(self, root: str) -> None:
        self._root = root
        self._times: dict[str, float] = {}
        self._last_flush = time.monotonic()

    def note(self, sha1: str) -> None:
        """Record a read of ``sha1`` now (no I/O)."""
        self._times[sha1] = time.time()
        if len(self._times) >= _FLUSH_EVERY or (
            time.monotonic() - self._last_flush > _FLUSH_SECONDS
        ):
            self._last_flush = time.monotonic()
            batch, self._times = self._times, {}
            _flusher.submit(self._write, batch)

    def snapshot(self) -> dict[str, float]:
        """The reads not yet written back (for a prune in this process)."""
        return dict(self._times)

    def _write(self, batch: dict[str, float]) -> None:
        for sha1, when in batch.items():
            path = f"{self._root}/{object_key(sha1)}"
            try:
                st = os.stat(path)
                if st.st_atime < when:
                    os.utime(path, ns=(int(when * 1e9), st.st_mtime_ns))
            except OSError:
                continue  # evicted meanwhile, or a read-only store


def open_objects(root: str) -> set[tuple[int, int]]:
    """``(device, inode)`` of the objects under ``root`` that a process this user can see
    has open or memory-mapped (Linux ``/proc``; empty elsewhere)."""
    prefix = f"{os.path.realpath(root)}/{OBJECTS_DIR}/"
    found: set[tuple[int, int]] = set()
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except FileNotFoundError:
        return found
    for pid in pids:
        paths: set[str] = set()
        try:
            with open(f"/proc/{pid}/maps", "rb") as maps:
                for line in maps:
                    index = line.find(b" /")
                    if index > 0 and line[index + 1 :].startswith(prefix.encode()):
                        paths.add(line[index + 1 :].rstrip(b"\n").decode(errors="replace"))
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith(prefix):
                    paths.add(target)
        except OSError:
            pass  # gone, or another user's process
        for path in paths:
            try:
                st = os.stat(path)
            except OSError:
                continue  # "(deleted)": already unlinked
            found.add((st.st_dev, st.st_ino))
    return found


_Candidate = tuple[float, str, int, int, int]  # (time, sha1, size, device, inode)


def _scan(
    root: str,
    excess: int,
    seen: set[str],
    recent: dict[str, float],
    report: PruneReport,
    progress: Progress | None = None,
) -> list[_Candidate]:
    """One pass over the store: counts objects and bytes into ``report`` and returns the
    least recently used objects not in ``seen``, oldest first: at least the
    :data:`_FIRST_BATCH` oldest, and as many as add up to ``excess`` bytes. Memory: the
    candidates only (a heap, newest on top)."""
    heap: list[tuple[float, str, int, int, int]] = []
    held = count = total = 0
    for sha1, _path, st in iter_objects(root):
        count += 1
        total += st.st_size
        if progress is not None:
            progress(st.st_size)
        if sha1 in seen:
            continue
        when = max(st.st_atime, st.st_mtime, recent.get(sha1, 0.0))
        full = held >= excess and len(heap) >= _FIRST_BATCH
        if full and -heap[0][0] <= when:
            continue
        heapq.heappush(heap, (-when, sha1, st.st_size, st.st_dev, st.st_ino))
        held += st.st_size
        while len(heap) > _FIRST_BATCH and held - heap[0][2] >= excess:
            held -= heapq.heappop(heap)[2]
    report.objects, report.size_before = count, total
    return sorted((-t, sha1, size, dev, ino) for t, sha1, size, dev, ino in heap)


def store_size(root: str) -> tuple[int, int]:
    """``(objects, bytes)`` of the local store at ``root`` (one pass, streaming)."""
    count = total = 0
    for _sha1, _path, st in iter_objects(root):
        count += 1
        total += st.st_size
    return count, total


def prune(
    store: Store,
    max_size: int | str,
    *,
    target: int | None = None,
    dry_run: bool = False,
    on_evict: Callable[[str, int], object] | None = None,
    progress: Progress | None = None,
) -> PruneReport:
    """Evict least-recently-used local objects that the store's zone holds until the
    store is at most ``target`` bytes (default ``max_size``); see the module docs.

    ``max_size`` is bytes or a size text (``"200G"``, ``"80%"`` of the root's disk).
    ``on_evict(sha1, size)`` is called for each object evicted (or, with ``dry_run``,
    that would be), so a caller can stream them out; ``progress(n)`` with the bytes of
    each object scanned. One pass over the store sums its
    size and keeps the oldest objects as candidates (a bounded heap); another pass runs
    only when too many of those must stay.
    """
    start = time.monotonic()
    limit = parse_size(max_size, store.root)
    report = PruneReport(dry_run=dry_run, max_size=limit)
    goal = limit if target is None else target
    root = str(store.root)
    recent = store.access_log.snapshot()
    seen: set[str] = set()
    candidates = _scan(root, 0, seen, recent, report, progress)
    size = report.size_before
    opened: set[tuple[int, int]] | None = None
    rounds = 0
    while size > goal and store.zone is not None and candidates:
        opened = open_objects(root) if opened is None else opened
        for _when, sha1, nbytes, dev, ino in candidates:
            seen.add(sha1)
            if (dev, ino) in opened:
                report.kept_open += 1
            elif not store.zone.holds(sha1, nbytes):
                report.kept_local_only += 1
            elif _evict(f"{root}/{object_key(sha1)}", dry_run):
                report.evicted += 1
                report.evicted_bytes += nbytes
                size -= nbytes
                if on_evict is not None:
                    on_evict(sha1, nbytes)
                if size <= goal:
                    break
        if size > goal:
            # The oldest objects had to stay (local-only, open): scan again for more,
            # asking for twice as much each round, which bounds the rounds.
            rounds += 1
            candidates = _scan(
                root,
                (size - goal) << rounds,
                seen,
                recent,
                PruneReport(dry_run=dry_run, max_size=limit),
            )
    report.size_after = size
    report.seconds = time.monotonic() - start
    return report


def _evict(path: str, dry_run: bool) -> bool:
    if dry_run:
        return True
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


class Bound:
    """The size bound of one store: counts what the store adds, prunes when it passes.

    When a pass cannot get under the bound (too much is local-only or in use), the next
    pass waits until the store has grown by another ``1 - LOW_WATER`` of the bound, so a
    store that cannot shrink does not rescan on every write.
    """

    def __init__(self, store: Store, max_size: int | str) -> None:
        self._store = store
        self._spec = max_size
        self._limit: int | None = None
        self._total: int | None = None
        self._next = 0
        self._lock = threading.Lock()

    @property
    def limit(self) -> int:
        """The bound in bytes (a percentage is resolved against the root's disk once)."""
        if self._limit is None:
            self._limit = parse_size(self._spec, self._store.root)
        return self._limit

    def added(self, size: int) -> None:
        """Count an object of ``size`` bytes the store just added; prune if over."""
        if self._total is not None:
            self._total += size
            if self._total <= self._next:
                return
        if not self._lock.acquire(blocking=False):
            return  # another thread is pruning; it rescans and sees this object too
        try:
            limit = self.limit
            report = prune(self._store, limit, target=int(limit * LOW_WATER))
            self._total = report.size_after
            self._next = max(limit, report.size_after + int(limit * (1 - LOW_WATER)))
        finally:
            self._lock.release()
