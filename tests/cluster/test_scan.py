"""The streaming walks behind verify, ls-cache, gc and prune: every object once, strays
apart, hashes right for small and memory-mapped large objects."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from kachery_flows import Store
from kachery_flows._scan import hash_object, iter_objects, iter_stray_files
from kachery_flows.cli import main


def test_walks_separate_objects_from_strays(store: Store) -> None:
    refs = [store.put_bytes(os.urandom(100 + i)) for i in range(20)]
    shard = store.object_path(refs[0]).parent
    (shard / "tmp.1234").write_bytes(b"partial")  # a kachery-cloud temp file
    misplaced = shard.parent / "00" / refs[1].sha1
    misplaced.parent.mkdir()
    misplaced.write_bytes(b"not here")
    found = {sha1: st.st_size for sha1, _path, st in iter_objects(str(store.root))}
    assert found == {ref.sha1: 100 + i for i, ref in enumerate(refs)}
    assert list(iter_stray_files(str(store.root))) == [str(shard / "tmp.1234")]
    assert list(iter_objects(str(store.root / "absent"))) == []


@pytest.mark.parametrize("size", [0, 1000, (1 << 20) + 1, 3 << 20])
def test_hash_object(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    (tmp_path / "f").write_bytes(data)
    assert hash_object(str(tmp_path / "f")) == (hashlib.sha1(data).hexdigest(), size)


def test_verify_finds_a_flipped_bit_in_a_large_object(store: Store) -> None:
    ref = store.put_bytes(os.urandom(3 << 20))
    path = store.object_path(ref)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    os.chmod(path, 0o644)
    path.write_bytes(bytes(data))
    report = store.verify()
    assert report.corrupt == [ref.sha1] and report.bytes_checked == 3 << 20


def test_ls_cache_streams_json_and_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ls-cache", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    store = Store(os.environ["KACHERY_CLOUD_DIR"])
    refs = sorted((store.put_bytes(os.urandom(10 + i)) for i in range(3)), key=lambda r: r.sha1)
    assert main(["ls-cache", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == [{"sha1": r.sha1, "size": store.object_path(r).stat().st_size} for r in refs]
    assert main(["ls-cache"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"sha1://{row['sha1']}\t{row['size']}" for row in rows
    ]
