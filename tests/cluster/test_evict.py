"""Size-bounded stores: only objects the zone verifiably holds are evicted, least
recently used first; local-only objects never; open or memory-mapped ones are kept and
readers keep working; a bounded store streaming 10x its size stays within one object of
its bound."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from kachery_flows import Store, get_default_store
from kachery_flows._evict import open_objects, prune, store_size
from kachery_flows.cli import main
from kachery_flows.config import load_settings, parse_size
from kachery_flows.zones import LocalZone, object_key

KB = 1024


def _zone_store(tmp_path: Path, **kwargs: object) -> tuple[Store, LocalZone]:
    zone = LocalZone(tmp_path / "zone", fsync=False)
    return Store(tmp_path / "local", zone=zone, fsync=False, **kwargs), zone  # type: ignore[arg-type]


def _age(store: Store, sha1: str, seconds_ago: float) -> None:
    # atime after mtime, as after a first read: relatime then leaves atime alone for a day
    when = time.time() - seconds_ago
    os.utime(store.object_path(f"sha1://{sha1}"), (when, when - 1))


def test_parse_size() -> None:
    assert parse_size("5000") == 5000
    assert parse_size("200G") == 200 << 30
    assert parse_size("1.5k") == 1536
    assert parse_size("10MiB") == 10 << 20
    assert parse_size(7) == 7
    total = os.statvfs("/").f_blocks * os.statvfs("/").f_frsize
    assert parse_size("50%", "/") == total // 2
    for bad in ("", "12X", "-5", "0%", "101%", "G"):
        with pytest.raises(ValueError):
            parse_size(bad, "/")
    with pytest.raises(ValueError, match="KACHERY_FLOWS_MAX_SIZE"):
        load_settings({"KACHERY_FLOWS_MAX_SIZE": "lots"})
    assert load_settings({"KACHERY_FLOWS_MAX_SIZE": "80%"}).max_size == "80%"


def test_only_zone_held_objects_are_evicted_oldest_first(tmp_path: Path) -> None:
    store, zone = _zone_store(tmp_path)
    shared = [store.put_bytes(bytes([i]) * (10 * KB)) for i in range(6)]
    local = [store.put_bytes(bytes([100 + i]) * (10 * KB), local=True) for i in range(3)]
    for age, ref in enumerate(shared + local):
        _age(store, ref.sha1, 1000 - 10 * age)  # shared[0] oldest ... local[-1] newest
    for ref in local:
        _age(store, ref.sha1, 5000)  # the local-only ones are the oldest of all
    evicted: list[str] = []
    report = prune(store, 50 * KB, on_evict=lambda sha1, size: evicted.append(sha1))
    assert report.size_before == 90 * KB and report.objects == 9
    assert evicted == [ref.sha1 for ref in shared[:4]]
    assert report.size_after == 50 * KB == store_size(str(store.root))[1]
    assert report.kept_local_only == 3
    for ref in local + shared[4:]:
        assert store.object_path(ref).is_file()
    # evicted copies come back from the zone, verified
    assert store.load_bytes(shared[0]) == bytes([0]) * (10 * KB)
    # nothing zone-held left to go: still over the bound, local-only objects untouched
    report = prune(store, 5 * KB)
    assert not report.ok and all(store.object_path(ref).is_file() for ref in local)
    assert zone.has(local[0].sha1) is False


def test_an_object_the_zone_holds_with_another_size_is_not_evicted(tmp_path: Path) -> None:
    store, zone = _zone_store(tmp_path)
    ref = store.put_bytes(b"x" * (10 * KB))
    zone_copy = zone.root / object_key(ref.sha1)
    zone_copy.write_bytes(b"x" * 10)  # truncated in the zone: not a copy we can rely on
    assert not zone.holds(ref.sha1, 10 * KB)
    report = prune(store, 0)
    assert report.evicted == 0 and report.kept_local_only == 1
    assert store.object_path(ref).is_file()
    zone_copy.unlink()
    zone_copy.mkdir()  # a directory under the object's name is no copy either
    assert prune(store, 0).evicted == 0


def test_dry_run_deletes_nothing(tmp_path: Path) -> None:
    store, _zone = _zone_store(tmp_path)
    refs = [store.put_bytes(bytes([i]) * KB) for i in range(4)]
    report = prune(store, 2 * KB, dry_run=True)
    assert report.evicted == 2 and report.size_after == 2 * KB
    assert all(store.object_path(ref).is_file() for ref in refs)


def test_reads_through_the_store_count_as_use(tmp_path: Path) -> None:
    store, _zone = _zone_store(tmp_path)
    a, b = store.put_bytes(b"a" * KB), store.put_bytes(b"b" * KB)
    _age(store, a.sha1, 2000)
    _age(store, b.sha1, 1000)
    store.load_bytes(a)  # noted in memory (no write on the read path), and by relatime
    assert a.sha1 in store.access_log.snapshot()
    prune(store, KB)
    assert store.object_path(a).is_file() and not store.object_path(b).is_file()


def test_a_memory_mapped_object_is_kept_and_stays_readable(tmp_path: Path) -> None:
    store, _zone = _zone_store(tmp_path)
    array = np.arange(20_000, dtype=np.float64)
    ref = store.put_npy(array)
    other = store.put_bytes(b"o" * KB)
    _age(store, ref.sha1, 2000)
    _age(store, other.sha1, 1000)
    mapped = store.load_npy(ref, mmap_mode="r")
    report = prune(store, 0)
    assert report.kept_open == 1 and report.evicted == 1
    assert store.object_path(ref).is_file() and not store.object_path(other).is_file()
    np.testing.assert_array_equal(mapped, array)
    del mapped


def test_a_reader_in_another_process_keeps_its_mapping(tmp_path: Path) -> None:
    store, _zone = _zone_store(tmp_path)
    array = np.arange(50_000, dtype=np.int64)
    ref = store.put_npy(array)
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import sys, numpy as np
            a = np.load({str(store.object_path(ref))!r}, mmap_mode="r")
            print("mapped", flush=True)
            sys.stdin.readline()
            print(int(a.sum()), flush=True)
        """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None and reader.stdin is not None
        assert reader.stdout.readline().strip() == "mapped"
        path = store.object_path(ref)
        assert (path.stat().st_dev, path.stat().st_ino) in open_objects(str(store.root))
        assert prune(store, 0).kept_open == 1 and path.is_file()
        # What happens where the mapping cannot be seen (another user's process): the
        # entry goes, and the mapped bytes stay readable (POSIX).
        path.unlink()
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert int(reader.stdout.readline()) == int(array.sum())
    finally:
        reader.kill()
        reader.communicate()


def test_a_bounded_store_streaming_ten_times_its_size(tmp_path: Path) -> None:
    source = Store(tmp_path / "producer", zone=LocalZone(tmp_path / "zone"), fsync=False)
    size, bound = 20 * KB, 200 * KB
    refs = [source.put_bytes(os.urandom(size)) for _ in range(100)]  # 10x the bound
    store = Store(
        tmp_path / "worker", zone=LocalZone(tmp_path / "zone"), fsync=False, max_size=bound
    )
    mine = [store.put_bytes(os.urandom(size), local=True) for _ in range(2)]
    peak = 0
    for ref in refs:
        assert len(store.load_bytes(ref)) == size
        peak = max(peak, store_size(str(store.root))[1])
    assert bound - size < peak <= bound + size
    assert all(store.load_bytes(ref, verify=True) for ref in mine)
    assert all(store.object_path(ref).is_file() for ref in mine)


def test_max_size_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KACHERY_FLOWS_MAX_SIZE", "64K")
    store, _zone = _zone_store(tmp_path)
    assert store.bound is not None and store.bound.limit == 64 * KB
    assert Store(tmp_path / "nozone").bound is None  # nothing could be evicted


def test_cli_prune(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KACHERY_ZONE", f"file://{tmp_path / 'zone'}")
    store = get_default_store()
    refs = [store.put_bytes(bytes([i]) * KB) for i in range(3)]
    kept = store.put_bytes(b"L" * KB, local=True)
    for age, ref in enumerate([*refs, kept]):
        _age(store, ref.sha1, 1000 - age)
    assert main(["prune", "--max-size", "2K", "--dry-run", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["evicted"], report["dry_run"], report["kept_local_only"]) == (2, True, 0)
    assert main(["prune"]) == 2
    assert "KACHERY_FLOWS_MAX_SIZE" in capsys.readouterr().err
    assert main(["prune", "--max-size", "huge"]) == 2
    assert main(["prune", "--max-size", "0", "--progress"]) == 0
    captured = capsys.readouterr()
    assert "scanning" in captured.err
    out = captured.out.splitlines()
    assert out[:3] == [f"evicted: sha1://{ref.sha1}\t{KB}" for ref in refs]
    assert "kept 1 local-only" in out[-2] and "still over the bound" in out[-1]
    assert store.object_path(kept).is_file()
