"""Disk faults during a store: typed errors, a consistent store, no temp litter.

Faults are injected at every system call of the write path (``mkdir``, ``open``,
``write``, ``fsync``, ``close``, ``replace``, ``sendfile``), for ``ENOSPC`` and ``EACCES``
(the tests run as root, which ignores file modes, so permission errors are injected), and
only for paths inside the store (or zone) under test. Every operation that writes must
raise a typed error (:class:`StoreWriteError` keeping the errno, or a zone error for the
zone's side), leave no partial object and no temp file, keep earlier objects readable,
and succeed once the fault is gone.

Where ``unshare`` can give a private mount namespace (root on Linux), the same is checked
against real file systems: a tiny tmpfs that fills up, and a read-only bind mount of a
populated store, which must still serve loads and memoized hits.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kachery_flows import Store, StoreWriteError, ZonePermissionError, kachery_cached
from kachery_flows.action_cache import action_cache
from kachery_flows.zones import LocalZone

ERRNOS = {"ENOSPC": errno.ENOSPC, "EACCES": errno.EACCES}
SMALL = b"small object " * 100
BIG = np.random.default_rng(0).standard_normal(300_000)  # > 1 MiB: the threaded write path


class Injector:
    """Make the ``nth`` call of ``os.<call>`` that writes to a path (or fd) under ``root``
    fail with ``code`` (``nth=0``: none, just count them in :attr:`seen`; ``None``: all)."""

    CALLS = ("mkdir", "open", "write", "fsync", "close", "replace", "link", "sendfile")

    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        call: str,
        code: int,
        root: Path,
        nth: int | None,
    ) -> None:
        self.root = str(root.resolve())
        self.seen = self.triggered = 0
        self.active = True
        real = getattr(os, call)
        path_arg = {"mkdir": 0, "open": 0, "replace": 1, "link": 1, "utime": 0}
        fd_arg = {"write": 0, "fsync": 0, "close": 0, "sendfile": 0}

        def faulty(*args: Any, **kwargs: Any) -> Any:
            if (
                self.active
                and (
                    (call in path_arg and self._inside_path(args[path_arg[call]]))
                    or (call in fd_arg and self._inside_fd(args[fd_arg[call]]))
                )
                and self._writes(call, args)
            ):
                self.seen += 1
                if nth is None or self.seen == nth:
                    self.triggered += 1
                    if call == "close":
                        real(*args, **kwargs)  # the descriptor is released even so
                    raise OSError(code, os.strerror(code))
            return real(*args, **kwargs)

        monkeypatch.setattr(os, call, faulty)

    @staticmethod
    def _writes(call: str, args: tuple[Any, ...]) -> bool:
        """Only writes fail here: opens for writing, descriptors open for writing."""
        if call == "open":
            return bool(args[1] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
        if call in ("close", "fsync"):
            return fcntl.fcntl(args[0], fcntl.F_GETFL) & os.O_ACCMODE != os.O_RDONLY
        return True

    def _inside_path(self, path: Any) -> bool:
        try:
            text = os.fspath(path)
        except TypeError:
            return False
        if isinstance(text, bytes):
            text = os.fsdecode(text)
        return os.path.abspath(text).startswith(self.root + os.sep)

    def _inside_fd(self, fd: Any) -> bool:
        try:
            return self._inside_path(os.readlink(f"/proc/self/fd/{fd}"))
        except (OSError, TypeError):
            return False


def _fresh(base: Path, name: str) -> tuple[Store, LocalZone]:
    zone = LocalZone(base / name / "zone", fsync=True)
    store = Store(base / name / "store", zone=zone, fsync=True)
    return store, zone


def _litter(*roots: Path) -> list[Path]:
    return [p for root in roots for p in Store(root).iter_temp_files()]


# Each operation writes something; the zone ones are faulted on the zone's side.
def _op_put_bytes(store: Store, zone: LocalZone) -> object:
    return store.put_bytes(SMALL, local=True)


def _op_put_big_npy(store: Store, zone: LocalZone) -> object:
    return store.put_npy(BIG, local=True)


def _op_put_file(store: Store, zone: LocalZone) -> object:
    src = store.root.parent / "source.bin"
    if not src.exists():
        src.write_bytes(SMALL * 3)
    return store.put_file(src, local=True)


def _op_memo_call(store: Store, zone: LocalZone) -> object:
    @kachery_cached(store=Store(store.root, fsync=True), version="1")
    def double(x: float) -> Any:
        return np.full(1000, 2 * x)

    return double(21.0)


def _op_fetch(store: Store, zone: LocalZone) -> object:
    seeded = Store(store.root.parent / "seed", zone=zone, fsync=False)
    with _paused():
        ref = seeded.put_bytes(b"in the zone only" * 50)
    return store.load_bytes(ref)


def _op_upload(store: Store, zone: LocalZone) -> object:
    return store.put_bytes(SMALL + b" shared")


_PAUSED: list[Injector] = []


class _paused:
    """Suspend the active injector (to seed a zone through the same system calls)."""

    def __enter__(self) -> None:
        for injector in _PAUSED:
            injector.active = False

    def __exit__(self, *exc: object) -> None:
        for injector in _PAUSED:
            injector.active = True


OPERATIONS: dict[str, tuple[Callable[[Store, LocalZone], object], str]] = {
    "put_bytes": (_op_put_bytes, "store"),
    "put_npy (2.4 MB)": (_op_put_big_npy, "store"),
    "put_file": (_op_put_file, "store"),
    "memoized call": (_op_memo_call, "store"),
    "fetch from zone": (_op_fetch, "store"),
    "upload to zone": (_op_upload, "zone"),
}


def _expected_error(exc: BaseException, code: int) -> bool:
    """StoreWriteError keeping the errno; a denied write may also be reported by the zone
    (a copy cannot tell which side refused)."""
    if isinstance(exc, StoreWriteError) and exc.errno == code:
        return True
    return code == errno.EACCES and isinstance(exc, ZonePermissionError)


def _run_case(
    base: Path, monkeypatch: pytest.MonkeyPatch, op_name: str, call: str, code: int, nth: int
) -> tuple[Injector, BaseException | None]:
    """Run one operation on a fresh store with the ``nth`` ``call`` failing; check that the
    store is consistent afterwards and that the operation then succeeds."""
    op, side = OPERATIONS[op_name]
    case = f"{op_name}/{call}#{nth}/{errno.errorcode[code]}"
    store, zone = _fresh(base, case.replace("/", "-").replace(" ", "_").replace("#", "-"))
    keep = store.put_bytes(b"stored before the fault", local=True)
    error: BaseException | None = None
    with monkeypatch.context() as patch:
        injector = Injector(patch, call, code, store.root if side == "store" else zone.root, nth)
        _PAUSED[:] = [injector]
        try:
            op(store, zone)
        except Exception as exc:
            error = exc
    # consistent: nothing corrupt, no litter, earlier objects intact
    assert store.verify(temp_grace_seconds=0).ok, case
    assert Store(zone.root).verify(temp_grace_seconds=0).ok, case
    assert _litter(store.root, zone.root) == [], case
    assert store.load_bytes(keep, verify=True) == b"stored before the fault", case
    result = op(store, zone)  # the fault is gone: it works
    if op_name == "memoized call":
        assert np.array_equal(result, np.full(1000, 42.0)), case  # type: ignore[arg-type]
    assert store.verify().ok and _litter(store.root, zone.root) == [], case
    return injector, error


def test_faults_at_every_write_call_are_typed_and_leave_a_consistent_store(
    scratch: Path, monkeypatch: pytest.MonkeyPatch, figures: Any
) -> None:
    """Crash-point injection: for each operation, each system call and each errno, the
    1st, 2nd, ... call on the store's (or zone's) paths fails in turn."""
    cases = recovered = 0
    untyped: list[str] = []
    for op_name in OPERATIONS:
        for call in Injector.CALLS:
            for code in ERRNOS.values():
                counted, _ = _run_case(scratch, monkeypatch, op_name, call, code, nth=0)
                for nth in range(1, counted.seen + 1):
                    injector, error = _run_case(scratch, monkeypatch, op_name, call, code, nth)
                    cases += 1
                    if error is None:
                        recovered += 1  # e.g. shutil falls back from a failed sendfile
                    elif not (injector.triggered and _expected_error(error, code)):
                        untyped.append(
                            f"{op_name}/{call}#{nth}/{errno.errorcode[code]}: "
                            f"{type(error).__name__}: {error}"
                        )
    assert cases >= 150
    assert untyped == [], "\n".join(untyped)
    figures.add(
        "disk faults",
        "ENOSPC/EACCES at the n-th mkdir/open/write/fsync/close/"
        "replace/link/sendfile of 6 write operations: faults injected / recovered by "
        "a fallback / untyped errors / litter / corrupt",
        f"{cases} / {recovered} / {len(untyped)} / 0 / 0",
    )


def test_hits_do_not_write(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A memo hit must work when nothing can be written (read-only store or full disk)."""
    store = Store(scratch / "ro", fsync=False)

    @kachery_cached(store=store, version="1")
    def square(x: float) -> float:
        return x * x

    assert square(3.0) == 9.0
    for call in ("utime", "open", "mkdir", "replace"):
        action_cache(store)._touched.clear()  # as in a new process: the hit notes its use
        with monkeypatch.context() as patch:
            Injector(patch, call, errno.EROFS, store.root, nth=None)
            assert square(3.0) == 9.0


# ------------------------------------------------------------ real file systems
def _namespace_available() -> bool:
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"], capture_output=True
    )
    return probe.returncode == 0


needs_namespace = pytest.mark.skipif(
    not _namespace_available(), reason="needs a private mount namespace (root, unshare)"
)


def _in_namespace(setup: str, script: str, tmp_path: Path) -> str:
    """Run ``setup`` (shell, mounts) then ``script`` (Python) in a private mount namespace;
    the mounts vanish with it. Returns the script's stdout."""
    code = tmp_path / "script.py"
    code.write_text(textwrap.dedent(script))
    command = f"set -e\n{setup}\nexec {sys.executable} {code}\n"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(Path(__file__).parent), env.get("PYTHONPATH")])
    )
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@needs_namespace
def test_a_full_tmpfs_gives_typed_errors_and_no_litter(tmp_path: Path, figures: Any) -> None:
    mount = tmp_path / "small"
    mount.mkdir()
    out = _in_namespace(
        f"mount -t tmpfs -o size=1m tmpfs {mount}",
        f"""
        import errno, numpy as np
        from kachery_flows import Store, StoreWriteError, kachery_cached
        store = Store({str(mount / "store")!r}, fsync=True)
        stored, failures = [], 0
        for i in range(40):
            try:
                stored.append(store.put_npy(np.full(20_000, float(i))))
            except StoreWriteError as exc:
                assert exc.errno == errno.ENOSPC and "disk is full" in str(exc), exc
                failures += 1
        assert failures > 0 and stored
        assert not list(store.iter_temp_files())
        report = store.verify(temp_grace_seconds=0)
        assert report.ok and report.checked == len(stored)
        for i, ref in enumerate(stored):
            assert store.load_npy(ref, verify=True)[0] == float(i)

        @kachery_cached(store=store, version="1")
        def big(x):
            return np.full(200_000, x)

        try:
            big(1.0)
            raise AssertionError("a 1.6 MB result fit on a full disk")
        except StoreWriteError as exc:
            assert exc.errno == errno.ENOSPC
        assert not list(store.iter_temp_files()) and store.verify().ok
        print(len(stored), failures)
        """,
        tmp_path,
    )
    stored, failures = map(int, out.split())
    figures.add(
        "disk faults",
        "real 1 MiB tmpfs filled by put_npy: objects stored / "
        "ENOSPC StoreWriteErrors / temp files left / corrupt",
        f"{stored} / {failures} / 0 / 0",
    )


@needs_namespace
def test_a_read_only_store_still_serves_loads_and_hits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, figures: Any
) -> None:
    from rel_funcs import memo_series

    root = tmp_path / "ro-store"
    monkeypatch.setenv("KACHERY_CLOUD_DIR", str(root))
    memo_series(1, 10)  # an entry to hit
    store = Store(root, fsync=False)
    ref = store.put_npy(np.arange(10.0))
    text = store.put_text("hello")
    out = _in_namespace(
        f"mount --bind {root} {root}\nmount -o remount,bind,ro {root}",
        f"""
        import errno, numpy as np
        from kachery_flows import Store, StoreWriteError
        import rel_funcs
        store = Store({str(root)!r}, fsync=False)
        assert store.load_npy({ref.uri!r}, verify=True)[3] == 3.0
        assert store.load_text({text.uri!r}) == "hello"
        assert store.verify().ok
        value = rel_funcs.memo_series(1, 10)      # a hit: nothing to write
        assert np.array_equal(value, rel_funcs.series(1, 10))
        for attempt in (lambda: store.put_text("new"), lambda: rel_funcs.memo_series(2, 10)):
            try:
                attempt()
                raise AssertionError("wrote to a read-only store")
            except StoreWriteError as exc:
                assert exc.errno == errno.EROFS and "read-only" in str(exc), exc
        print("ok")
        """,
        tmp_path,
    )
    assert out.strip() == "ok"
    figures.add(
        "disk faults",
        "read-only bind mount of a store: loads, verify, memo hit / writes",
        "served / StoreWriteError(EROFS)",
    )
