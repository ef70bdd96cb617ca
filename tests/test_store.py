from __future__ import annotations

import hashlib
import os
import stat
import time
from pathlib import Path

import numpy as np
import pytest

import kachery_flows as kf
from kachery_flows import (
    CorruptObjectError,
    InvalidURIError,
    ObjectNotFoundError,
    Ref,
    Store,
    StoreWriteError,
)
from kachery_flows.zones import LocalZone


def test_module_api_round_trips_on_default_store(tmp_path: Path) -> None:
    arr = np.arange(12, dtype=np.float64).reshape(3, 4)
    text_uri = kf.store_text("héllo ☃\r\n")
    json_uri = kf.store_json({"b": [1.0, 2], "a": "x"})
    npy_uri = kf.store_npy(arr, label="a.npy")
    pkl_uri = kf.store_pkl({"k": (1, 2)})
    src = tmp_path / "f.bin"
    src.write_bytes(os.urandom(3000))
    file_uri = kf.store_file(src, label="f.bin")

    assert kf.load_text(text_uri) == "héllo ☃\r\n"
    assert kf.load_json(json_uri) == {"b": [1.0, 2], "a": "x"}
    np.testing.assert_array_equal(kf.load_npy(npy_uri), arr)
    assert kf.load_pkl(pkl_uri) == {"k": (1, 2)}
    assert Path(kf.load_file(file_uri)).read_bytes() == src.read_bytes()
    assert kf.load_bytes(file_uri, 10, 20) == src.read_bytes()[10:20]
    assert file_uri == f"sha1://{hashlib.sha1(src.read_bytes()).hexdigest()}?label=f.bin"
    root = Path(os.environ["KACHERY_CLOUD_DIR"])
    h = Ref.parse(text_uri).sha1
    assert (root / "sha1" / h[:2] / h[2:4] / h[4:6] / h).read_bytes() == "héllo ☃\r\n".encode()
    for uri in (text_uri, json_uri, npy_uri, pkl_uri, file_uri):
        assert kf.exists(uri)


def test_local_variants_and_labels(store: Store) -> None:
    uri = store.store_text("example text", "example.txt", local=True)
    assert uri == "sha1://d9e989f651cdd269d7f9bb8a215d024d8d283688?label=example.txt"
    assert kf.store_text_local("") == "sha1://da39a3ee5e6b4b0d3255bfef95601890afd80709"


def test_env_root_is_followed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KACHERY_CLOUD_DIR", str(tmp_path / "a"))
    uri = kf.store_text("in a")
    monkeypatch.setenv("KACHERY_CLOUD_DIR", str(tmp_path / "b"))
    assert not kf.exists(uri)
    with pytest.raises(ObjectNotFoundError):
        kf.load_text(uri)


def test_missing_object_names_uri_and_root(store: Store) -> None:
    uri = "sha1://" + "0" * 40
    with pytest.raises(ObjectNotFoundError) as info:
        store.load_text(uri)
    assert uri in str(info.value) and str(store.root) in str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert not store.exists(uri)


def test_construction_and_failed_lookup_do_not_touch_disk(tmp_path: Path) -> None:
    root = tmp_path / "never"
    s = Store(root)
    assert not s.exists("sha1://" + "1" * 40)
    with pytest.raises(InvalidURIError):
        s.load_bytes("sha1://../../etc/passwd")
    assert not root.exists()


def test_store_is_idempotent_and_leaves_no_temp(store: Store) -> None:
    a = store.store_json({"x": 1})
    b = store.store_json({"x": 1})
    assert a == b
    assert list(store.iter_hashes()) == [Ref.parse(a).sha1]
    assert not any(store.iter_temp_files())


def test_truncated_existing_object_is_replaced(store: Store) -> None:
    ref = store.put_text("some longer content")
    path = store.object_path(ref)
    path.write_bytes(b"some")
    store.put_text("some longer content")
    assert path.read_bytes() == b"some longer content"


def test_verified_read_detects_corruption(store: Store) -> None:
    ref = store.put_npy(np.arange(1000))
    path = store.object_path(ref)
    data = bytearray(path.read_bytes())
    data[500] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptObjectError) as info:
        store.load_npy(ref, verify=True)
    assert ref.sha1 in str(info.value)
    report = store.verify()
    assert report.corrupt == [ref.sha1] and not report.ok
    report = store.verify(quarantine=True)
    assert not path.exists() and len(report.quarantined) == 1
    assert store.verify().ok


def test_verify_finds_and_removes_orphan_temp_files(store: Store) -> None:
    ref = store.put_text("x")
    shard = store.object_path(ref).parent
    kc_temp = shard / f"{ref.sha1}.AbCdEfGhIj"  # kachery-cloud's temp naming
    kc_temp.write_bytes(b"partial")
    ours = store.staging_dir / "deadbeef.part"
    ours.write_bytes(b"partial")
    fresh = store.staging_dir / "live.part"
    fresh.write_bytes(b"being written")
    old = time.time() - 7200
    os.utime(kc_temp, (old, old))
    os.utime(ours, (old, old))
    report = store.verify()
    assert sorted(report.temp_files) == sorted([str(kc_temp), str(ours)])
    assert kc_temp.exists()
    report = store.verify(remove_temp=True)
    assert not kc_temp.exists() and not ours.exists() and fresh.exists()
    assert report.ok and report.checked == 1


def test_failed_write_leaves_nothing(store: Store) -> None:
    class Boom:
        def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.put_npy(Boom())
    assert list(store.iter_hashes()) == []
    assert not any(store.iter_temp_files())


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_store_raises_typed_error_and_still_reads(store: Store) -> None:
    ref = store.put_text("readable")
    for dirpath, _dirs, _files in os.walk(store.root):
        os.chmod(dirpath, 0o555)
    try:
        with pytest.raises(StoreWriteError) as info:
            store.put_text("new content")
        assert "permission" in str(info.value).lower()
        assert store.load_text(ref) == "readable"
    finally:
        for dirpath, _dirs, _files in os.walk(store.root):
            os.chmod(dirpath, 0o755)


def test_enospc_during_write_is_typed_and_consistent(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from kachery_flows import hashing

    real_write = os.write
    calls = {"n": 0}

    def full_disk(fd: int, data: object) -> int:
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)  # type: ignore[arg-type]

    monkeypatch.setattr(hashing.os, "write", full_disk)
    with pytest.raises(StoreWriteError) as info:
        store.put_npy(np.zeros(1000))
    assert info.value.errno == errno.ENOSPC
    assert "disk is full" in str(info.value)
    monkeypatch.undo()
    assert list(store.iter_hashes()) == []
    assert not any(store.iter_temp_files())


def test_group_shared_mode_sets_modes(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        s = Store(tmp_path / "shared", group_shared=True, fsync=False)
        ref = s.put_text("lab data")
    finally:
        os.umask(old)
    path = s.object_path(ref)
    assert stat.S_IMODE(path.stat().st_mode) & 0o060 == 0o060
    d = path.parent
    while d != s.root:
        mode = stat.S_IMODE(d.stat().st_mode)
        assert mode & 0o2070 == 0o2070, oct(mode)
        d = d.parent


def test_store_file_errors_are_clear(store: Store, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        store.store_file(tmp_path / "missing.txt")
    with pytest.raises(IsADirectoryError):
        store.store_file(tmp_path)


def test_store_file_progress_and_large_file(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    data = os.urandom(20 * 1024 * 1024 + 7)
    src.write_bytes(data)
    seen: list[int] = []
    ref = store.put_file(src, progress=seen.append)
    assert sum(seen) == len(data)
    assert ref.sha1 == hashlib.sha1(data).hexdigest()


def test_load_bytes_range_checks(store: Store) -> None:
    ref = store.put_bytes(b"0123456789")
    assert store.load_bytes(ref, 2, 5) == b"234"
    assert store.load_bytes(ref, 4, 4) == b""
    with pytest.raises(ValueError):
        store.load_bytes(ref, 5, 11)


def test_ref_load_and_path(store: Store) -> None:
    ref = store.put_npy(np.arange(3), "x.npy")
    np.testing.assert_array_equal(ref.load(store=store), np.arange(3))
    plain = Ref(ref.sha1, "x.npy")
    np.testing.assert_array_equal(plain.load(store=store, mmap_mode="r"), np.arange(3))
    assert Ref(ref.sha1).load(store=store).startswith(b"\x93NUMPY")
    assert Path(ref.path(store=store)) == store.object_path(ref)


def test_zone_fallback_verifies_bytes(tmp_path: Path) -> None:
    zone = LocalZone(tmp_path / "zone", fsync=False)
    producer = Store(tmp_path / "a", zone=zone, fsync=False)
    consumer = Store(tmp_path / "b", zone=zone, fsync=False)
    ref = producer.put_text("shared")
    assert consumer.load_text(ref) == "shared"
    assert consumer.object_path(ref).is_file()

    bad = producer.put_text("will be corrupted")
    zone_path = zone.root / "sha1" / bad.sha1[:2] / bad.sha1[2:4] / bad.sha1[4:6] / bad.sha1
    zone_path.write_bytes(b"evil bytes")
    with pytest.raises(CorruptObjectError):
        consumer.load_text(bad)
    assert not consumer.object_path(bad).exists()
    assert not any(consumer.iter_temp_files())

    local_only = producer.put_text("private", local=True)
    with pytest.raises(ObjectNotFoundError, match="zone"):
        consumer.load_text(local_only)


def test_eacces_creating_temp_is_typed(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from kachery_flows import _atomic

    store.put_text("existing")

    def denied(*args: object, **kwargs: object) -> int:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(_atomic.os, "open", denied)
    with pytest.raises(StoreWriteError) as info:
        store.put_text("new")
    assert info.value.errno == errno.EACCES
    assert isinstance(info.value, OSError)
    monkeypatch.undo()
    assert store.load_text(store.put_text("existing")) == "existing"
    assert len(list(store.iter_hashes())) == 1
