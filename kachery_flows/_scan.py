"""Fast walks over a store's objects, for maintenance commands on millions of objects.

Strings and ``os.scandir`` only (no ``pathlib`` object per entry, no list of all paths):
one directory's entries are in memory at a time, in sorted order, and each object costs
one ``stat``.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import stat
from collections.abc import Iterator

from ._layout import OBJECTS_DIR
from .uri import is_sha1_hex

__all__ = ["hash_object", "iter_objects", "iter_stray_files", "subdirs"]

# Objects up to this size are read whole; larger ones are hashed through a read-only
# memory map: no copy into a buffer, so verify runs near SHA-1's own speed.
_READ_WHOLE = 1 << 20
_O_RDONLY = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


def subdirs(path: str) -> list[str]:
    """The two-character subdirectories of ``path`` (shards), sorted; none if absent."""
    try:
        with os.scandir(path) as entries:
            return sorted(
                e.path for e in entries if len(e.name) == 2 and e.is_dir(follow_symlinks=False)
            )
    except FileNotFoundError:
        return []


def _shard_entries(root: str) -> Iterator[tuple[str, list[os.DirEntry[str]]]]:
    """``(shard path, its entries)`` of every ``<root>/sha1/aa/bb/cc``, in order."""
    for level1 in subdirs(f"{root}/{OBJECTS_DIR}"):
        for level2 in subdirs(level1):
            for level3 in subdirs(level2):
                try:
                    with os.scandir(level3) as entries:
                        yield level3, list(entries)
                except FileNotFoundError:
                    continue


def iter_objects(root: str) -> Iterator[tuple[str, str, os.stat_result]]:
    """``(sha1, path, stat)`` of every object file ``<root>/sha1/aa/bb/cc/<sha1>`` (temp
    files, misplaced files and anything not a regular file are skipped)."""
    for level3, entries in _shard_entries(root):
        shard = level3[-8:].replace("/", "")  # "aa/bb/cc" -> "aabbcc"
        for entry in entries:
            name = entry.name
            if name[:6] != shard or not is_sha1_hex(name):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode):
                yield name, entry.path, st


def iter_stray_files(root: str) -> Iterator[str]:
    """Paths of the regular files in the shard directories that are not objects (temp
    files of writers such as kachery-cloud); no ``stat`` per entry."""
    for _level3, entries in _shard_entries(root):
        for entry in entries:
            if not is_sha1_hex(entry.name) and entry.is_file(follow_symlinks=False):
                yield entry.path


def hash_object(path: str) -> tuple[str, int]:
    """SHA-1 (40 hex digits) and size of the file at ``path``."""
    fd = os.open(path, _O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size <= _READ_WHOLE:
            data = os.read(fd, size + 1)
            while len(data) <= size:
                more = os.read(fd, size + 1 - len(data))
                if not more:
                    break
                data += more
            return hashlib.sha1(data).hexdigest(), len(data)
        with mmap.mmap(fd, 0, prot=mmap.PROT_READ) as mapped:
            mapped.madvise(mmap.MADV_SEQUENTIAL)
            return hashlib.sha1(mapped).hexdigest(), len(mapped)
    finally:
        os.close(fd)
