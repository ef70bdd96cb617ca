"""Maintenance of a local store: re-hash every object, find orphan temp files, and move
corrupt objects to the quarantine (``kachery-flows verify``, :meth:`Store.verify`)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from secrets import token_hex
from typing import Any

from ._atomic import TEMP_SUFFIX, make_dirs
from ._layout import quarantine_dir, staging_dir
from ._scan import hash_object, iter_objects, iter_stray_files
from .errors import StoreWriteError
from .zones.base import Progress

__all__ = ["VerifyReport", "iter_temp_files", "quarantine", "verify"]


@dataclass
class VerifyReport:
    """What :meth:`Store.verify` found."""

    checked: int = 0
    bytes_checked: int = 0
    corrupt: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    temp_files: list[str] = field(default_factory=list)
    removed_temp_files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no corrupt object was found (orphan temp files are not errors)."""
        return not self.corrupt

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary."""
        return {
            "ok": self.ok,
            "checked": self.checked,
            "bytes_checked": self.bytes_checked,
            "corrupt": self.corrupt,
            "quarantined": self.quarantined,
            "temp_files": self.temp_files,
            "removed_temp_files": self.removed_temp_files,
        }


def quarantine(root: Path, path: Path, *, group_shared: bool) -> Path:
    """Move the file ``path`` into the quarantine of the store at ``root``; return where
    it went (a name that never collides: quarantining twice keeps both copies)."""
    folder = quarantine_dir(root)
    try:
        make_dirs(folder, group_shared=group_shared)
        # time, and a random part: quarantining twice in a second must keep both copies
        target = folder / f"{path.name}.{int(time.time())}.{token_hex(4)}"
        os.replace(path, target)
    except OSError as exc:
        raise StoreWriteError(
            exc.errno or 0, f"cannot quarantine {path}: {exc.strerror}", str(path)
        ) from exc
    return target


def iter_temp_files(root: Path) -> Iterator[Path]:
    """Temp files left by writers: ours (``*.part`` in the staging directory) and
    kachery-cloud's in the shards."""
    for stray in iter_stray_files(str(root)):
        yield Path(stray)
    staging = staging_dir(root)
    if staging.is_dir():
        with os.scandir(staging) as entries:
            for entry in entries:
                if entry.name.endswith(TEMP_SUFFIX) and entry.is_file():
                    yield Path(entry.path)


def verify(
    root: Path,
    *,
    group_shared: bool,
    quarantine_corrupt: bool,
    remove_temp: bool,
    temp_grace_seconds: float,
    progress: Progress | None,
) -> VerifyReport:
    """Re-hash every object under ``root`` and look for orphan temp files (see
    :meth:`Store.verify`)."""
    report = VerifyReport()
    for sha1, object_file, _stat in iter_objects(str(root)):
        try:
            actual, size = hash_object(object_file)
        except FileNotFoundError:
            continue  # evicted or removed meanwhile
        report.checked += 1
        report.bytes_checked += size
        if progress is not None:
            progress(size)
        if actual != sha1:
            report.corrupt.append(sha1)
            if quarantine_corrupt:
                moved = quarantine(root, Path(object_file), group_shared=group_shared)
                report.quarantined.append(str(moved))
    cutoff = time.time() - temp_grace_seconds
    for temp in iter_temp_files(root):
        try:
            if temp.stat().st_mtime > cutoff:
                continue
        except FileNotFoundError:
            continue
        report.temp_files.append(str(temp))
        if remove_temp:
            temp.unlink(missing_ok=True)
            report.removed_temp_files.append(str(temp))
    return report
