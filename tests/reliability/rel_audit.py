"""Record the file system accesses and risky operations a block of code makes.

:func:`recording` collects, while it is active, the paths of audit events (``open``,
``os.listdir``, ``os.scandir``, ``os.mkdir``, ``os.rename``, ``os.remove``, ...; see
:pep:`578`) plus ``os.stat``/``os.lstat`` calls (which raise no audit event), and the
events that mean code is being loaded or run (``os.open`` with ``dir_fd`` is spied on so
its relative path is recorded in full) (``exec``, ``compile``, ``import``,
``os.system``, ``subprocess.Popen``, ``os.exec``, ``os.posix_spawn``, ``os.fork``).

An audit hook cannot be removed, so one is installed for the session and does nothing
unless a recording is active.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

PATH_EVENTS = {
    "open": 0,
    "os.listdir": 0,
    "os.scandir": 0,
    "os.mkdir": 0,
    "os.rename": 0,
    "os.remove": 0,
    "os.rmdir": 0,
    "os.chmod": 0,
    "os.utime": 0,
    "os.link": 0,
    "os.symlink": 0,
    "os.truncate": 0,
    "shutil.copyfile": 0,
    "os.chdir": 0,
}
CODE_EVENTS = {
    "exec",
    "compile",
    "import",
    "os.system",
    "subprocess.Popen",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.kill",
    "ctypes.dlopen",
    "pickle.find_class",
}


@dataclass
class Recording:
    """What happened while recording."""

    paths: list[str] = field(default_factory=list)
    code: list[tuple[str, str]] = field(default_factory=list)

    def outside(self, *roots: os.PathLike[str] | str) -> list[str]:
        """Accessed paths that are not inside any of ``roots``."""
        prefixes = [os.path.realpath(r) + os.sep for r in roots]
        return [
            p
            for p in self.paths
            if not any((os.path.realpath(p) + os.sep).startswith(pre) for pre in prefixes)
        ]


_active: Recording | None = None
_dir_fd_base: str | None = None  # the directory of an os.open(..., dir_fd=) in progress
_owner: int | None = None
_installed = False
_guard = threading.Lock()


def _path(value: Any) -> str | None:
    if isinstance(value, int):
        return None
    try:
        text = os.fspath(value)
    except TypeError:
        return None
    return os.fsdecode(text)


def _hook(event: str, args: tuple[Any, ...]) -> None:
    recording = _active
    if recording is None or threading.get_ident() != _owner:
        return
    if event in PATH_EVENTS and args:
        path = _path(args[PATH_EVENTS[event]])
        if path is not None:
            if _dir_fd_base is not None and not os.path.isabs(path):
                path = os.path.join(_dir_fd_base, path)  # os.open(..., dir_fd=)
            recording.paths.append(os.path.abspath(path))
    elif event in CODE_EVENTS:
        recording.code.append((event, repr(args)[:200]))


def _spy(real: Any) -> Any:
    def stat(path: Any, *args: Any, **kwargs: Any) -> Any:
        recording = _active
        if recording is not None and threading.get_ident() == _owner:
            text = _path(path)
            if text is not None:
                recording.paths.append(os.path.abspath(text))
        return real(path, *args, **kwargs)

    return stat


def _spy_open(real: Any) -> Any:
    """``os.open`` that tells the audit hook which directory a ``dir_fd`` names (the
    audit event carries only the relative path)."""

    def open_(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        global _dir_fd_base
        if dir_fd is None:
            return int(real(path, flags, mode))
        _dir_fd_base = os.readlink(f"/proc/self/fd/{dir_fd}")
        try:
            return int(real(path, flags, mode, dir_fd=dir_fd))
        finally:
            _dir_fd_base = None

    return open_


@contextmanager
def recording() -> Iterator[Recording]:
    """Record this thread's accesses while the block runs."""
    global _active, _owner, _installed
    with _guard:
        if not _installed:
            sys.addaudithook(_hook)
            _installed = True
    real_stat, real_lstat, real_open = os.stat, os.lstat, os.open
    result = Recording()
    # No garbage collection meanwhile: finalizers of unrelated objects would be recorded.
    collecting = gc.isenabled()
    gc.disable()
    os.stat, os.lstat = _spy(real_stat), _spy(real_lstat)  # type: ignore[assignment]
    os.open = _spy_open(real_open)
    _active, _owner = result, threading.get_ident()
    try:
        yield result
    finally:
        _active, _owner = None, None
        os.stat, os.lstat, os.open = real_stat, real_lstat, real_open  # type: ignore[assignment]
        if collecting:
            gc.enable()
