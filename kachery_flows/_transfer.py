"""Objects between a store's local cache and its zone: verified downloads, uploads, and
where an object is.

Every byte read from a zone goes to a staging temp file, is hashed, and enters the cache
only if the hash matches (:func:`download`); a mismatch is fetched once more, then is a
:class:`CorruptObjectError` and nothing enters the cache. Uploads send a local object,
and ``replace`` first checks the local copy, so a damaged zone copy is only ever replaced
by good bytes (:func:`upload`).
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._atomic import publish, staged_writer
from ._layout import object_path
from .errors import (
    CorruptObjectError,
    KacheryError,
    ObjectNotFoundError,
    StoreWriteError,
    ZoneError,
)
from .hashing import sha1_of_file
from .uri import Ref
from .zones.base import Progress, Zone

if TYPE_CHECKING:
    from .store import Store

__all__ = [
    "DOWNLOAD_ATTEMPTS",
    "corrupt_local",
    "download",
    "locate",
    "not_found",
    "upload",
    "verified",
    "zone_for",
]

#: A download whose bytes do not match is fetched once more before CorruptObjectError:
#: bytes damaged in transit are then repaired, while a corrupt zone object costs one
#: extra download (restic's "retry once" rule).
DOWNLOAD_ATTEMPTS = 2
# errnos that only the writing side of a copy gives: the local disk is full or read-only
_WRITE_SIDE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def zone_for(store: Store, ref: Ref) -> Zone | None:
    """The zone ``ref`` is fetched from: the kachery network zone that a
    ``kachery:<zone>:sha1:...`` URI names, else the store's zone."""
    if ref.zone is None:
        return store.zone
    from .zones import network_zone_for

    return network_zone_for(ref.zone, store.zone)


def not_found(
    root: Path, ref: Ref, zone: Zone | None, detail: str | None = None
) -> ObjectNotFoundError:
    """The error for ``ref`` missing from the store at ``root`` and from ``zone``."""
    where = f"the local store {root}"
    if zone is not None:
        where += f" or the zone {zone.name}"
    hint = "" if zone is not None else " (no zone is configured: set KACHERY_ZONE)"
    if detail:
        hint += f" ({detail})"
    return ObjectNotFoundError(f"{ref.uri} was not found in {where}{hint}", uri=ref.uri)


def corrupt_local(ref: Ref, path: Path, actual: str, detail: str = "") -> CorruptObjectError:
    """The error for a local object whose bytes hash to ``actual``."""
    return CorruptObjectError(
        f"local object {path} for {ref.uri} is corrupt (its bytes hash to {actual})"
        f"{detail}; run `kachery-flows verify --quarantine` to move it aside",
        uri=ref.uri,
        actual_sha1=actual,
    )


def _download_error(exc: OSError, ref: Ref, zone: Zone, temp: Path) -> KacheryError:
    """The typed error for an OSError a zone's ``get`` let through."""
    if exc.errno in _WRITE_SIDE_ERRNOS:
        return StoreWriteError.from_os_error(exc, f"download {ref.uri} into", temp)
    return ZoneError(f"zone {zone.name}: reading {ref.uri} failed: {exc}")


def download(store: Store, ref: Ref, zone: Zone | None, progress: Progress | None) -> Path:
    """Fetch ``ref`` from ``zone`` into ``store``'s cache, verified; its local path."""
    if zone is None:
        raise not_found(store.root, ref, zone)
    actual = ""
    for _attempt in range(DOWNLOAD_ATTEMPTS):
        with staged_writer(
            store.staging_dir, fsync=store.fsync, group_shared=store.group_shared
        ) as writer:
            try:
                zone.get(ref.sha1, writer.path, progress)
            except ObjectNotFoundError as exc:
                raise not_found(store.root, ref, zone, exc.detail) from exc
            except KacheryError:
                raise
            except OSError as exc:
                raise _download_error(exc, ref, zone, writer.path) from exc
            actual = sha1_of_file(writer.path)
        if actual == ref.sha1:
            dest = object_path(store.root, ref.sha1)
            created = publish(
                writer.path,
                dest,
                sha1=actual,
                fsync=store.fsync,
                group_shared=store.group_shared,
            )
            if created and store.bound is not None:
                store.bound.added(dest.stat().st_size)
            return dest
        writer.path.unlink(missing_ok=True)
    raise CorruptObjectError(
        f"bytes downloaded for {ref.uri} from zone {zone.name} hash to {actual} "
        f"({DOWNLOAD_ATTEMPTS} attempts); they were discarded and nothing entered the "
        "cache. The zone's copy is damaged: replace it from a good copy with "
        f"`kachery-flows push --replace {ref.uri}`.",
        uri=ref.uri,
        actual_sha1=actual,
    )


def verified(store: Store, ref: Ref, path: Path) -> Path:
    """``path`` if the local object hashes to ``ref``; if it is corrupt, with a zone, it
    is moved to the quarantine and a good copy fetched; otherwise (or if that fails)
    :class:`CorruptObjectError`."""
    actual = sha1_of_file(path)
    if actual == ref.sha1:
        return path
    zone = zone_for(store, ref)
    if zone is None:
        raise corrupt_local(ref, path, actual)
    try:
        store.quarantine(path)
        return download(store, ref, zone, None)
    except (ObjectNotFoundError, StoreWriteError) as exc:
        detail = f" and no good copy could be fetched from the zone ({exc})"
        raise corrupt_local(ref, path, actual, detail) from exc


def upload(store: Store, zone: Zone, ref: Ref, *, progress: Progress | None, replace: bool) -> None:
    """Send ``store``'s local copy of ``ref`` to ``zone`` (see :meth:`Store.upload`)."""
    path = object_path(store.root, ref.sha1)
    if not path.is_file():
        raise ObjectNotFoundError(
            f"{ref.uri} is not in the local store {store.root}; nothing to upload",
            uri=ref.uri,
        )
    if replace:
        actual = sha1_of_file(path)
        if actual != ref.sha1:  # refuse, rather than repair it from the zone's copy
            raise corrupt_local(ref, path, actual)
        zone.delete(ref.sha1)
    zone.put(path, ref.sha1, progress)


def locate(store: Store, ref: Ref, path: Path | None) -> dict[str, Any]:
    """Where ``ref`` is: its local ``path`` (None: not local), or its zone (asked only
    when it is not local); see :meth:`Store.info`."""
    zone = zone_for(store, ref) if path is None else store.zone
    in_zone: bool | None = None
    if path is None and zone is not None:
        in_zone = zone.has(ref.sha1)
    if path is None and not in_zone:
        raise not_found(store.root, ref, zone)
    return {
        "uri": ref.uri,
        "sha1": ref.sha1,
        "label": ref.label,
        "local": path is not None,
        "path": str(path) if path is not None else None,
        "size": path.stat().st_size if path is not None else None,
        "zone": zone.name if zone is not None else None,
        "in_zone": in_zone,
    }
