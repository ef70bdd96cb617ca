"""The one owner of every on-disk path of a store and of a zone.

A store root (``~/.kachery-cloud`` by default) and a directory or bucket zone share one
layout; nothing else in the package spells these paths::

    sha1/aa/bb/cc/<sha1>                    objects, byte-compatible with kachery-cloud
    refs/<name>                             a zone's mutable ref map (records point here)
    .kachery-flows/staging/                 temp files being written (*.part)
    .kachery-flows/quarantine/              corrupt objects moved aside by verify
    .kachery-flows/refs/<name>              a store's local ref map (no writable zone)
    .kachery-flows/locks/                   lock files (in a shared-directory zone: per zone)
    .kachery-flows/lock-table               this host's byte-range lock table
    .kachery-flows/memo/objects/aa/<sha1>   marks: objects the action cache wrote (gc may take)
    .kachery-flows/memo/trusted/aa/<sha1>   marks: pickled results this store wrote
    .kachery-flows/memo/keys/aa/<key>       the local memo-key index

Functions over a :class:`~pathlib.Path` root give local paths; the ``*_key`` functions give
the same places as ``/``-separated keys relative to a zone's root (fsspec, HTTP).
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = [
    "INTERNAL_DIR",
    "OBJECTS_DIR",
    "lock_table_path",
    "locks_dir",
    "marker_path",
    "memo_index_dir",
    "memo_marks_dir",
    "memo_trusted_dir",
    "object_key",
    "object_path",
    "quarantine_dir",
    "ref_key",
    "refs_dir",
    "sha1_of_key",
    "staging_dir",
    "staging_key",
]

#: The directory (under a store root or a zone root) of everything that is not an object.
INTERNAL_DIR = ".kachery-flows"
#: The top directory of the object shards.
OBJECTS_DIR = "sha1"

_OBJECT_KEY = re.compile(r"sha1/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{40})")


def object_key(sha1: str) -> str:
    """``sha1/aa/bb/cc/<sha1>``: where object ``sha1`` lives under a root (kachery-cloud's
    sharding)."""
    return f"{OBJECTS_DIR}/{sha1[0:2]}/{sha1[2:4]}/{sha1[4:6]}/{sha1}"


def sha1_of_key(key: str) -> str | None:
    """The inverse of :func:`object_key`: the hash a relative key names, or None when the
    key is not exactly an object key (wrong shard, upper case, extra parts)."""
    match = _OBJECT_KEY.fullmatch(key)
    if match is None:
        return None
    sha1 = match.group(4)
    if match.group(1, 2, 3) != (sha1[0:2], sha1[2:4], sha1[4:6]):
        return None
    return sha1


def object_path(root: Path, sha1: str) -> Path:
    """The local path of object ``sha1`` under ``root``."""
    return root / object_key(sha1)


def ref_key(name: str) -> str:
    """``refs/<name>``: the key of a zone's ref (``name`` already validated)."""
    return f"refs/{name}"


def staging_key() -> str:
    """The key of the staging directory relative to a zone's root."""
    return f"{INTERNAL_DIR}/staging"


def staging_dir(root: Path) -> Path:
    """Where temp files are written before they are renamed into place."""
    return root / INTERNAL_DIR / "staging"


def quarantine_dir(root: Path) -> Path:
    """Where ``verify`` moves corrupt objects."""
    return root / INTERNAL_DIR / "quarantine"


def refs_dir(root: Path) -> Path:
    """A store's local ref map (used when it has no writable zone)."""
    return root / INTERNAL_DIR / "refs"


def locks_dir(root: Path) -> Path:
    """Lock files; under a shared-directory zone's root they are shared by its hosts."""
    return root / INTERNAL_DIR / "locks"


def lock_table_path(root: Path) -> Path:
    """This host's byte-range lock table."""
    return root / INTERNAL_DIR / "lock-table"


def memo_marks_dir(root: Path) -> Path:
    """Marks of the objects the action cache wrote: only these may be garbage-collected."""
    return root / INTERNAL_DIR / "memo" / "objects"


def memo_trusted_dir(root: Path) -> Path:
    """Marks of the pickled results this store wrote itself (they may be unpickled)."""
    return root / INTERNAL_DIR / "memo" / "trusted"


def memo_index_dir(root: Path) -> Path:
    """The local memo-key index (key -> entry)."""
    return root / INTERNAL_DIR / "memo" / "keys"


def marker_path(folder: Path, name: str) -> Path:
    """``<folder>/<name[:2]>/<name>``: the sharded file of a mark or an index entry."""
    return folder / name[:2] / name
