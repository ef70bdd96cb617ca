"""``ZoneTests``: the conformance suite every :class:`~kachery_flows.zones.Zone` passes."""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .._layout import object_key
from ..errors import (
    CorruptObjectError,
    InvalidRefNameError,
    ObjectNotFoundError,
    ZoneError,
    ZonePermissionError,
)
from ..store import Store
from ..zones.base import MAX_REF_BYTES, Zone

__all__ = ["BAD_REF_NAMES", "ZoneTests"]

#: Ref names every zone must refuse (they could escape the ``refs/`` prefix).
BAD_REF_NAMES = (
    "",
    "/",
    "/abs",
    "a/",
    "a//b",
    ".",
    "..",
    "../x",
    "a/../b",
    "a/./b",
    "a\\b",
    "a\x00b",
    "a b",
    "a\nb",
    "é",
    "x" * 1025,
    "%2e%2e",
    "a?b",
    "a#b",
    "~/x",
)


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def _run_threads(count: int, work: Callable[[int], object]) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def run(i: int) -> None:
        try:
            start.wait()
            work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


class ZoneTests:
    """Conformance tests for a zone. Subclass in a ``test_*.py`` module as ``Test...``:

    .. code-block:: python

        class TestMyZone(ZoneTests):
            @pytest.fixture
            def zone(self, tmp_path):
                return MyZone(...)          # a fresh, empty zone

            def write_raw(self, zone, key, data):
                ...                          # put bytes at key, bypassing the zone

            def read_raw(self, zone, key):
                ...                          # bytes at key, or None

    Keys are relative (``sha1/aa/bb/cc/<hash>``, ``refs/<name>``). The raw hooks are the
    ground truth the tests compare with, seed read-only zones, and plant corrupt objects.
    Writable zones get round-trip, idempotence, listing, delete, ref and concurrency
    tests; read-only zones get tests that every write is refused. A zone whose flags say
    it cannot list, delete or hold refs must raise ``ZoneError`` for those operations.
    Capabilities are checked by behaviour: :meth:`Zone.holds` against objects of known
    size, :meth:`Zone.shared_lock_dir` by writing a lock file there.
    """

    #: Hypothesis examples per property test (each one makes a few zone requests).
    hypothesis_examples = 20
    #: Whether ``holds`` tells a wrong size (False for zones that inherit the default,
    #: which asks ``has`` only).
    holds_checks_size = True

    @pytest.fixture
    def zone(self) -> Zone:
        """A fresh, empty zone (override in the subclass)."""
        raise NotImplementedError("subclasses of ZoneTests provide a `zone` fixture")

    def write_raw(self, zone: Zone, key: str, data: bytes) -> None:
        """Store ``data`` at relative ``key`` without going through ``zone``."""
        raise NotImplementedError

    def read_raw(self, zone: Zone, key: str) -> bytes | None:
        """The bytes at relative ``key`` (None if absent), read without ``zone``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    def seed(self, zone: Zone, data: bytes, tmp_path: Path) -> str:
        """Put ``data`` into the zone (through ``put`` when writable); return its hash."""
        sha1 = _sha1(data)
        if zone.writable:
            src = tmp_path / f"seed-{sha1}"
            src.write_bytes(data)
            zone.put(src, sha1)
        else:
            self.write_raw(zone, object_key(sha1), data)
        return sha1

    def store(self, zone: Zone, root: Path) -> Store:
        """A store with its own cache directory in front of ``zone``."""
        return Store(root, zone=zone, fsync=False)

    # ------------------------------------------------------------------- tests
    def test_flags(self, zone: Zone) -> None:
        flags = (zone.writable, zone.listable, zone.supports_refs, zone.deletable)
        for flag in flags:
            assert isinstance(flag, bool)
        assert isinstance(zone.name, str) and zone.name

    def test_holds(self, zone: Zone, tmp_path: Path) -> None:
        """``holds`` is true for an object of the right size, false for an absent one,
        and (when the zone sees sizes) false for a wrong size."""
        data = b"held object " * 10
        sha1 = self.seed(zone, data, tmp_path)
        assert zone.holds(sha1, len(data))
        if self.holds_checks_size:
            assert not zone.holds(sha1, len(data) + 1)
            assert not zone.holds(sha1, len(data) - 1)
        missing = _sha1(b"not held " + tmp_path.name.encode())
        assert not zone.holds(missing, 3)
        empty = self.seed(zone, b"", tmp_path)
        assert zone.holds(empty, 0)

    def test_shared_lock_dir(self, zone: Zone, tmp_path: Path) -> None:
        """A shared lock directory, when the zone has one, takes lock files (and only a
        writable zone can have one); lock files never show up as objects."""
        lock_dir = zone.shared_lock_dir()
        if lock_dir is None:
            return
        assert zone.writable
        assert isinstance(lock_dir, Path)
        lock_dir.mkdir(parents=True, exist_ok=True)
        probe = lock_dir / f"probe-{os.getpid()}.lock"
        probe.write_text("owner")
        assert probe.read_text() == "owner"
        if zone.listable:
            assert list(zone.iter_hashes()) == []
        probe.unlink()

    def test_pickle(self, zone: Zone, tmp_path: Path) -> None:
        """Zones travel to worker processes (Dask, Prefect) with the store."""
        sha1 = self.seed(zone, b"pickled zone", tmp_path)
        clone = pickle.loads(pickle.dumps(zone))
        assert type(clone) is type(zone)
        assert (clone.name, clone.writable, clone.listable) == (
            zone.name,
            zone.writable,
            zone.listable,
        )
        assert clone.has(sha1)
        reader = Store(tmp_path / "reader", zone=clone, fsync=False)
        assert reader.load_bytes(f"sha1://{sha1}") == b"pickled zone"

    def test_round_trip(self, zone: Zone, tmp_path: Path) -> None:
        data = b"round trip \x00\xff" * 1000
        sha1 = self.seed(zone, data, tmp_path)
        assert zone.has(sha1)
        assert self.read_raw(zone, object_key(sha1)) == data
        dest = tmp_path / "got"
        seen: list[int] = []
        zone.get(sha1, dest, seen.append)
        assert dest.read_bytes() == data
        assert sum(seen) in (0, len(data))

    def test_empty_object(self, zone: Zone, tmp_path: Path) -> None:
        sha1 = self.seed(zone, b"", tmp_path)
        assert sha1 == "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        assert zone.has(sha1)
        assert self.store(zone, tmp_path / "reader").load_bytes(f"sha1://{sha1}") == b""

    def test_round_trip_through_store(self, zone: Zone, tmp_path: Path) -> None:
        reader = self.store(zone, tmp_path / "reader")
        if zone.writable:
            writer = self.store(zone, tmp_path / "writer")
            uri = writer.store_json({"zone": zone.name, "x": [1, 2.5]}, "x.json")
        else:
            sha1 = self.seed(zone, b'{"x":[1,2.5]}', tmp_path)
            uri = f"sha1://{sha1}?label=x.json"
        value = reader.load_json(uri)
        assert value["x"] == [1, 2.5]
        assert reader.object_path(uri).is_file()
        assert not any(reader.iter_temp_files())

    def test_missing_object(self, zone: Zone, tmp_path: Path) -> None:
        sha1 = _sha1(b"never stored " + tmp_path.name.encode())
        assert not zone.has(sha1)
        with pytest.raises(ObjectNotFoundError):
            zone.get(sha1, tmp_path / "dest")
        reader = self.store(zone, tmp_path / "reader")
        with pytest.raises(ObjectNotFoundError, match=sha1):
            reader.load_bytes(f"sha1://{sha1}")
        assert not reader.object_path(f"sha1://{sha1}").exists()
        assert not any(reader.iter_temp_files())

    def test_corrupt_object_detected_through_store(self, zone: Zone, tmp_path: Path) -> None:
        good = b"the real content " * 100
        sha1 = _sha1(good)
        for bad in (b"evil bytes", good[:-1], good + b"x", b""):
            self.write_raw(zone, object_key(sha1), bad)
            reader = self.store(zone, tmp_path / f"reader-{len(bad)}")
            with pytest.raises(CorruptObjectError) as info:
                reader.load_bytes(f"sha1://{sha1}")
            assert info.value.actual_sha1 == _sha1(bad)
            assert not reader.object_path(f"sha1://{sha1}").exists()
            assert not any(reader.iter_temp_files())

    def test_put_is_idempotent(self, zone: Zone, tmp_path: Path) -> None:
        if not zone.writable:
            pytest.skip("read-only zone")
        data = b"idempotent"
        sha1 = self.seed(zone, data, tmp_path)
        self.seed(zone, data, tmp_path)
        assert self.read_raw(zone, object_key(sha1)) == data
        if zone.listable:
            assert list(zone.iter_hashes()).count(sha1) == 1

    def test_put_refuses_mislabeled_file(self, zone: Zone, tmp_path: Path) -> None:
        if not zone.writable:
            pytest.skip("read-only zone")
        src = tmp_path / "src"
        src.write_bytes(b"actual bytes")
        claimed = _sha1(b"claimed bytes")
        with pytest.raises(CorruptObjectError):
            zone.put(src, claimed)
        assert not zone.has(claimed)
        assert self.read_raw(zone, object_key(claimed)) is None

    def test_read_only_refuses_writes(self, zone: Zone, tmp_path: Path) -> None:
        if zone.writable:
            pytest.skip("writable zone")
        src = tmp_path / "src"
        src.write_bytes(b"data")
        sha1 = _sha1(b"data")
        with pytest.raises(ZonePermissionError):
            zone.put(src, sha1)
        with pytest.raises(ZonePermissionError):
            zone.delete(sha1)
        if zone.supports_refs:
            with pytest.raises(ZonePermissionError):
                zone.set_ref("a", "b")
        assert self.read_raw(zone, object_key(sha1)) is None
        writer = self.store(zone, tmp_path / "writer")
        assert writer.upload(writer.put_bytes(b"data", local=True)) is False

    def test_listing(self, zone: Zone, tmp_path: Path) -> None:
        if not zone.listable:
            with pytest.raises(ZoneError):
                list(zone.iter_hashes())
            return
        assert set(zone.iter_hashes()) == set()
        hashes = {self.seed(zone, f"object {i}".encode(), tmp_path) for i in range(5)}
        self.write_raw(zone, "sha1/00/00/00/not-a-hash", b"x")
        self.write_raw(zone, "refs/some-ref", b"not an object")
        listed = list(zone.iter_hashes())
        assert sorted(listed) == sorted(hashes)

    def test_delete(self, zone: Zone, tmp_path: Path) -> None:
        if not zone.writable:
            pytest.skip("read-only zone")
        if not zone.deletable:
            kept = self.seed(zone, b"kept forever", tmp_path)
            with pytest.raises(ZoneError):
                zone.delete(kept)
            assert zone.has(kept)
            return
        keep = self.seed(zone, b"keep", tmp_path)
        gone = self.seed(zone, b"gone", tmp_path)
        zone.delete(gone)
        zone.delete(gone)
        assert not zone.has(gone) and zone.has(keep)
        assert self.read_raw(zone, object_key(gone)) is None

    def test_refs(self, zone: Zone) -> None:
        if not zone.supports_refs:
            with pytest.raises(ZoneError):
                zone.get_ref("memo/abc")
            with pytest.raises(ZoneError):
                zone.set_ref("memo/abc", "value")
            with pytest.raises(ZoneError):
                zone.set_ref("memo/abc", None)
            return
        if not zone.writable:
            self.write_raw(zone, "refs/memo/abc", "récord\n".encode())
            assert zone.get_ref("memo/abc") == "récord\n"
            assert zone.get_ref("memo/missing") is None
            return
        assert zone.get_ref("memo/abc") is None
        zone.set_ref("memo/abc", "first")
        zone.set_ref("memo/abc", "récord\n")
        assert zone.get_ref("memo/abc") == "récord\n"
        assert self.read_raw(zone, "refs/memo/abc") == "récord\n".encode()
        zone.set_ref("memo/other.v2", "")
        assert zone.get_ref("memo/other.v2") == ""
        zone.set_ref("memo/abc", None)
        zone.set_ref("memo/abc", None)
        assert zone.get_ref("memo/abc") is None
        assert zone.get_ref("memo/other.v2") == ""
        if zone.listable:
            assert list(zone.iter_hashes()) == []

    def test_refs_that_are_not_refs(self, zone: Zone) -> None:
        """Others may write a zone's refs: one that is not UTF-8 or is larger than
        MAX_REF_BYTES is a ZoneError, read in bounded memory."""
        if not zone.supports_refs:
            pytest.skip("zone has no refs")
        self.write_raw(zone, "refs/memo/binary", b"\xff\xfe\x00 not text")
        with pytest.raises(ZoneError, match="UTF-8"):
            zone.get_ref("memo/binary")
        self.write_raw(zone, "refs/memo/huge", b"x" * (MAX_REF_BYTES + 1))
        with pytest.raises(ZoneError, match="larger than"):
            zone.get_ref("memo/huge")
        self.write_raw(zone, "refs/memo/largest", b"y" * MAX_REF_BYTES)
        assert zone.get_ref("memo/largest") == "y" * MAX_REF_BYTES

    def test_invalid_ref_names(self, zone: Zone) -> None:
        if not zone.supports_refs:
            pytest.skip("zone has no refs")
        for name in BAD_REF_NAMES:
            with pytest.raises(InvalidRefNameError):
                zone.get_ref(name)
            with pytest.raises(InvalidRefNameError):
                zone.set_ref(name, "value")
        if zone.listable:
            assert list(zone.iter_hashes()) == []

    def test_concurrent_writers_and_readers(self, zone: Zone, tmp_path: Path) -> None:
        shared = b"same object from every thread " * 2000
        sha1 = _sha1(shared)
        if not zone.writable:
            self.write_raw(zone, object_key(sha1), shared)

        def work(i: int) -> None:
            store = self.store(zone, tmp_path / f"client-{i}")
            if zone.writable:
                assert store.put_bytes(shared).sha1 == sha1
                own = store.put_bytes(f"own object {i}".encode())
                if zone.supports_refs:
                    zone.set_ref("concurrent/last", f"writer {i}")
                assert store.load_bytes(own) == f"own object {i}".encode()
            reader = self.store(zone, tmp_path / f"reader-{i}")
            assert reader.load_bytes(f"sha1://{sha1}") == shared

        assert _run_threads(8, work) == []
        assert self.read_raw(zone, object_key(sha1)) == shared
        if zone.writable and zone.supports_refs:
            assert zone.get_ref("concurrent/last") in {f"writer {i}" for i in range(8)}
            if zone.listable:
                assert len(set(zone.iter_hashes())) == 9

    def test_property_round_trip(self, zone: Zone) -> None:
        examples = self.hypothesis_examples

        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(data=st.binary(max_size=4096), label=st.none() | st.text(max_size=40))
        def round_trip(data: bytes, label: str | None) -> None:
            with tempfile.TemporaryDirectory() as tmp:
                root = Path(tmp)
                sha1 = _sha1(data)
                if zone.writable:
                    uri = self.store(zone, root / "writer").store_file(
                        _write(root / "src", data), label
                    )
                else:
                    self.seed(zone, data, root)
                    uri = f"sha1://{sha1}"
                assert uri.startswith(f"sha1://{sha1}")
                assert self.store(zone, root / "reader").load_bytes(uri) == data

        round_trip()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
