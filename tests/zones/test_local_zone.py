"""The shared-directory zone: permission modes for lab sharing, layout, errors."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kachery_flows import Store
from kachery_flows.zones import LocalZone, object_key


@pytest.fixture
def umask_077() -> Iterator[None]:
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def _modes(root: Path) -> tuple[dict[str, int], dict[str, int]]:
    dirs: dict[str, int] = {}
    files: dict[str, int] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            p = Path(dirpath, d)
            dirs[str(p.relative_to(root))] = stat.S_IMODE(p.stat().st_mode)
        for f in filenames:
            p = Path(dirpath, f)
            files[str(p.relative_to(root))] = stat.S_IMODE(p.stat().st_mode)
    return dirs, files


def test_group_shared_modes_ignore_a_private_umask(tmp_path: Path, umask_077: None) -> None:
    zone = LocalZone(tmp_path / "lab", group_shared=True, fsync=False)
    store = Store(tmp_path / "me", zone=zone, fsync=False)
    ref = store.put_text("lab data")
    zone.set_ref("memo/key", "value")
    dirs, files = _modes(zone.root)
    assert dirs and files
    assert set(dirs.values()) == {0o2775}, dirs
    assert set(files.values()) == {0o664}, files
    assert object_key(ref.sha1) in files and "refs/memo/key" in files
    assert stat.S_IMODE(zone.root.stat().st_mode) == 0o2775


def test_private_zone_keeps_the_umask(tmp_path: Path, umask_077: None) -> None:
    zone = LocalZone(tmp_path / "mine", fsync=False)
    Store(tmp_path / "me", zone=zone, fsync=False).put_text("private")
    dirs, files = _modes(zone.root)
    assert set(dirs.values()) == {0o700}
    assert all(mode & 0o077 == 0 for mode in files.values())


def _foreign_gid() -> int | None:
    """A group other than ours that we may assign (root may assign any)."""
    mine = os.getgid()
    if os.geteuid() == 0:
        return 4242 if mine != 4242 else 4243
    others = [g for g in os.getgroups() if g != mine]
    return others[0] if others else None


def test_new_entries_inherit_the_shared_directory_group(tmp_path: Path) -> None:
    gid = _foreign_gid()
    if gid is None:
        pytest.skip("needs root or membership in a second group")
    root = tmp_path / "lab"
    root.mkdir()
    os.chown(root, -1, gid)
    os.chmod(root, 0o2775)  # what the lab admin does once: chgrp lab; chmod 2775
    zone = LocalZone(root, group_shared=True, fsync=False)
    ref = Store(tmp_path / "me", zone=zone, fsync=False).put_text("group data")
    zone.set_ref("r", "v")
    for path in [*root.rglob("*")]:
        assert path.stat().st_gid == gid, path
    assert (root / object_key(ref.sha1)).stat().st_gid == gid


_AS_ANOTHER_USER = """
import os, sys
from kachery_flows import Store, ZonePermissionError
from kachery_flows.zones import LocalZone
# Drop to "nobody" once everything is imported (the interpreter may live under /root).
os.setgroups([]); os.setgid(65534); os.setuid(65534)
zone = LocalZone(sys.argv[1], fsync=False)
store = Store(sys.argv[2], zone=zone, fsync=False)
for attempt in (lambda: store.put_text("denied"), lambda: zone.set_ref("r", "v")):
    try:
        attempt()
    except ZonePermissionError as exc:
        print("ZonePermissionError", sys.argv[1] in str(exc))
print(store.load_text(sys.argv[3]))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a client as another user")
def test_a_directory_others_cannot_write_is_a_permission_error(tmp_path: Path) -> None:
    base = Path(tempfile.mkdtemp(prefix="kf-perm-"))
    try:
        base.chmod(0o755)
        zone = LocalZone(base / "zone", fsync=False)  # owned by root, mode 755
        uri = Store(base / "owner", zone=zone, fsync=False).store_text("readable by all")
        client_root = base / "nobody"
        client_root.mkdir()
        os.chown(client_root, 65534, 65534)
        out = subprocess.run(
            [sys.executable, "-c", _AS_ANOTHER_USER, str(zone.root), str(client_root), uri],
            capture_output=True,
            text=True,
            cwd="/",
        )
        assert out.returncode == 0, out.stderr
        denied = "ZonePermissionError True"
        assert out.stdout.splitlines() == [denied, denied, "readable by all"]
    finally:
        shutil.rmtree(base)


def test_a_kachery_cloud_cache_works_as_a_zone(tmp_path: Path) -> None:
    producer = Store(tmp_path / "kachery-cloud-dir", fsync=False)
    ref = producer.put_json({"from": "a kachery-cloud style cache"})
    # kachery-cloud leaves temp files like this next to objects; they are not objects.
    (producer.object_path(ref).parent / f"{ref.sha1}.tmp.abcd1234").write_bytes(b"partial")
    zone = LocalZone(producer.root, read_only=True)
    assert list(zone.iter_hashes()) == [ref.sha1]
    consumer = Store(tmp_path / "consumer", zone=zone, fsync=False)
    assert consumer.load_json(ref) == {"from": "a kachery-cloud style cache"}


def test_put_replaces_a_truncated_leftover(tmp_path: Path) -> None:
    zone = LocalZone(tmp_path / "zone", fsync=False)
    store = Store(tmp_path / "me", zone=zone, fsync=False)
    ref = store.put_bytes(b"complete object", local=True)
    leftover = zone.root / object_key(ref.sha1)
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"compl")
    assert store.upload(ref)
    assert leftover.read_bytes() == b"complete object"
