"""Zone capabilities the core consults: shared_lock_dir and holds, on their edge cases."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from kachery_flows import ZonePermissionError, ZoneUnavailableError
from kachery_flows._layout import locks_dir, object_path
from kachery_flows._retry import RetryPolicy
from kachery_flows.zones import FsspecZone, HttpZone, LocalZone

DATA = b"capability probe"
SHA1 = hashlib.sha1(DATA).hexdigest()


def test_a_writable_directory_zone_shares_its_lock_directory(tmp_path: Path) -> None:
    assert LocalZone(tmp_path / "z").shared_lock_dir() == locks_dir(tmp_path / "z")
    assert LocalZone(tmp_path / "z", read_only=True).shared_lock_dir() is None
    assert HttpZone("https://mirror.example/k").shared_lock_dir() is None


def test_directory_zone_holds_only_a_regular_file_of_that_size(tmp_path: Path) -> None:
    zone = LocalZone(tmp_path / "z", fsync=False)
    path = object_path(zone.root, SHA1)
    path.parent.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(DATA)
    path.symlink_to(elsewhere)  # get() refuses a symlink: the zone does not hold it
    assert not zone.holds(SHA1, len(DATA))
    path.unlink()
    path.mkdir()
    assert not zone.holds(SHA1, len(DATA))
    path.rmdir()
    path.write_bytes(DATA)
    assert zone.holds(SHA1, len(DATA)) and not zone.holds(SHA1, len(DATA) + 1)


def test_fsspec_zone_errors_count_as_not_holding(monkeypatch: pytest.MonkeyPatch) -> None:
    zone = FsspecZone(f"memory://kf-{uuid.uuid4().hex}/zone", retry=RetryPolicy(max_attempts=1))
    zone.fs.pipe_file(f"{zone.root}/{object_path(Path(), SHA1).as_posix()}", DATA)
    assert zone.holds(SHA1, len(DATA))
    calls = []

    def broken(path: str, **kwargs: Any) -> None:
        calls.append(path)
        raise ConnectionResetError("reset")

    monkeypatch.setattr(zone.fs, "info", broken)
    assert not zone.holds(SHA1, len(DATA))
    assert len(calls) == 1  # asked once: eviction never waits for retries


def test_default_holds_asks_has_and_swallows_zone_errors() -> None:
    class Mirror(HttpZone):  # HttpZone keeps Zone's default holds()
        answer: bool | Exception = True

        def has(self, sha1: str) -> bool:
            if isinstance(self.answer, Exception):
                raise self.answer
            return self.answer

    zone = Mirror("https://mirror.example/k")
    assert zone.holds(SHA1, 1)
    zone.answer = False
    assert not zone.holds(SHA1, 1)
    zone.answer = ZoneUnavailableError("down")
    assert not zone.holds(SHA1, 1)
    zone.answer = ConnectionResetError("reset")
    assert not zone.holds(SHA1, 1)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any directory")
def test_an_unreadable_shard_is_a_permission_error_when_listing(tmp_path: Path) -> None:
    zone = LocalZone(tmp_path / "z", fsync=False)
    src = tmp_path / "src"
    src.write_bytes(DATA)
    zone.put(src, SHA1)
    shard = object_path(zone.root, SHA1).parent
    shard.chmod(0)
    try:
        with pytest.raises(ZonePermissionError, match="listing objects"):
            list(zone.iter_hashes())
    finally:
        shard.chmod(0o755)
