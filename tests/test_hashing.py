"""HashingWriter: the SHA-1 of what was written, whatever mix of writes produced it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from kachery_flows import Store
from kachery_flows.hashing import HashingWriter


def test_deferred_and_plain_writes_hash_in_order(tmp_path: Path) -> None:
    big = np.random.default_rng(0).integers(0, 255, 3 << 20, dtype=np.uint8)
    parts = [b"header", big, b"middle", big[::-1].copy(), b"x" * (2 << 20)]
    path = tmp_path / "out"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        writer = HashingWriter(fd, path)
        writer.write(parts[0])
        writer.write_unchanged(parts[1])  # its hash may still run during the next write
        writer.write(parts[2])
        writer.write_unchanged(parts[3])
        writer.write(parts[4])
        digest = writer.hexdigest()
    finally:
        os.close(fd)
    expected = hashlib.sha1(b"".join(bytes(memoryview(p)) for p in parts)).hexdigest()
    assert digest == expected == hashlib.sha1(path.read_bytes()).hexdigest()
    assert writer.size == path.stat().st_size


def test_large_arrays_stored_with_fsync_have_np_save_hashes(tmp_path: Path) -> None:
    store = Store(tmp_path / "s", fsync=True)
    for arr in (np.arange(1_000_000.0), np.asfortranarray(np.ones((700, 900)))):
        ref = store.put_npy(arr)
        np.save(tmp_path / "plain.npy", arr, allow_pickle=False)
        assert ref.sha1 == hashlib.sha1((tmp_path / "plain.npy").read_bytes()).hexdigest()
        assert store.verify().ok
