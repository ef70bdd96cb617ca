"""Collectable marks: which local objects the action cache wrote.

Garbage collection (:mod:`kachery_flows.garbage`) may delete only marked objects: memo
results and records that no live record reaches. A mark is an empty file,
``<root>/.kachery-flows/memo/objects/aa/<sha1>`` (see :mod:`kachery_flows._layout`), and
this module owns the rule of when one exists (:func:`after_write`):

* the action cache writes an object: it is marked only if that write created it (bytes
  the user had already stored stay unmarked); a write that finds it marked refreshes the
  mark's mtime, which restarts gc's grace period;
* the user stores bytes on purpose (``store_*``): their URI may be shared, so an existing
  mark is removed, even if the action cache happened to write the same bytes first.
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path

from ._atomic import create_marker
from ._layout import marker_path, memo_marks_dir
from .errors import StoreWriteError

__all__ = ["after_write", "mark", "mark_path"]


def mark_path(root: Path, sha1: str) -> Path:
    """The mark of object ``sha1`` (it exists only for collectable objects)."""
    return marker_path(memo_marks_dir(root), sha1)


def mark(root: Path, sha1: str, *, created: bool, group_shared: bool) -> None:
    """The action cache wrote (or fetched) object ``sha1``: mark it if ``created``, else
    refresh an existing mark (an unmarked object is the user's and stays unmarked)."""
    path = mark_path(root, sha1)
    try:
        if not created:
            with suppress(FileNotFoundError):
                os.utime(path)
            return
        create_marker(path, group_shared=group_shared)
    except OSError as exc:
        raise StoreWriteError.from_os_error(exc, "mark", path) from exc


def after_write(
    root: Path, sha1: str, *, created: bool, collectable: bool, group_shared: bool
) -> None:
    """Apply the marking rule (see the module docs) after object ``sha1`` was written;
    ``collectable`` says the action cache wrote it."""
    if collectable:
        mark(root, sha1, created=created, group_shared=group_shared)
    elif not created:
        mark_path(root, sha1).unlink(missing_ok=True)
