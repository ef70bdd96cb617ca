"""Scale: a store with a million small objects and 100,000 memo entries.

Builds (once per run, fsync off) a store of ``--objects`` small plain objects plus
``--entries`` real memo entries (result object, record object, cache marks, ref-map
entry and index entry, exactly what a computed call leaves; hits use them) and
``--garbage`` unreachable cache objects older than gc's grace period. Files are written
straight into the layout: that is what a bulk generator should do, and the layout is the
contract. Then it measures, on this store:

* memo hit latency at 100 entries (a separate small store) and at ``--entries``;
* ``gc`` (entries/s), ``prune`` (objects scanned/s, with a directory zone holding
  ``--zone-objects`` of them as hard links), ``ls-cache`` (objects/s), ``verify``
  (objects/s, MB/s) and, on a separate store of large objects, ``verify`` MB/s against
  this machine's SHA-1 throughput;
* the cost of ``max_size`` on the write path (puts with and without a bound);
* ``to_kachery`` of an array with ``--chunks`` chunks against ``da.to_npy_stack``.

The store is deleted at the end (``--keep`` keeps it). Footprint: about 8 KiB of disk
and two inodes per object at 1,000,000 objects (nearly every object has its own
``aa/bb/cc`` directory), plus about 8 inodes per memo entry. On tmpfs (``--dir
/dev/shm``) mind its inode limit: ``--objects 800000 --zone-objects 20000`` gives a store
of 1,010,000 objects (the memo entries add 200,000) in about 2.6 M inodes.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import fmt_seconds, note, per_call, print_comparison

import kachery_flows as kf
from kachery_flows import codecs
from kachery_flows._evict import prune, store_size
from kachery_flows._results import StoredResult
from kachery_flows.action_cache import CacheEntry
from kachery_flows.cli import main as cli_main
from kachery_flows.garbage import collect_garbage
from kachery_flows.memoize import CachedFunction
from kachery_flows.records import build_record
from kachery_flows.uri import Ref
from kachery_flows.zones import LocalZone

_DAY = 86400.0


def _square(i: int) -> list[int]:
    return [i, i * i]


class _Writer:
    """Writes files into a store's layout, creating each directory once."""

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self._dirs: set[str] = set()

    def file(self, rel: str, data: bytes) -> str:
        path = f"{self.root}/{rel}"
        parent = path.rsplit("/", 1)[0]
        if parent not in self._dirs:
            os.makedirs(parent, exist_ok=True)
            self._dirs.add(parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        return path

    def obj(self, data: bytes, *, mark: bool = False) -> str:
        sha1 = hashlib.sha1(data).hexdigest()
        self.file(f"sha1/{sha1[:2]}/{sha1[2:4]}/{sha1[4:6]}/{sha1}", data)
        if mark:
            self.file(f".kachery-flows/memo/objects/{sha1[:2]}/{sha1}", b"")
        return sha1


def _memo_entries(writer: _Writer, cached: CachedFunction[Any, Any], n: int) -> None:
    """``n`` real memo entries of ``cached`` (json results), as a computed call leaves
    them in a store without a zone."""
    now = time.time()
    for i in range(n):
        key, values, encodings = cached._key_material((i,), {})
        value = _square(i)
        data = codecs.encode_json(value)
        result_sha1 = writer.obj(data, mark=True)
        stored = StoredResult(Ref(result_sha1, "_square.json", "json"), len(data), None, "list", ())
        record = build_record(
            key=key,
            function=cached.identity,
            version=cached.version,
            code=cached.code,
            closure=cached.closure,
            names=cached._names,
            values=values,
            encodings=encodings,
            ignored=(),
            result=stored,
            duration=0.001,
            created=now,
        )
        record_sha1 = writer.obj(codecs.encode_json(record), mark=True)
        entry = CacheEntry(record_sha1, result_sha1, "json", len(data)).encode()
        writer.file(f".kachery-flows/refs/memo/{key}", entry.encode())
        writer.file(
            f".kachery-flows/memo/keys/{key[:2]}/{key}",
            json.dumps({"function": cached.identity, "entry": entry}).encode(),
        )


def build(root: Path, zone_root: Path, args: argparse.Namespace) -> CachedFunction[Any, Any]:
    """The big store: zone-held objects first (the oldest), other objects, memo entries,
    garbage."""
    writer = _Writer(root)
    zone = _Writer(zone_root)
    t0 = time.perf_counter()
    for i in range(args.objects):
        data = (b"object %d " % i).ljust(args.object_bytes, b"x")
        sha1 = writer.obj(data)
        if i < args.zone_objects:
            rel = f"sha1/{sha1[:2]}/{sha1[2:4]}/{sha1[4:6]}"
            zone.file(f"{rel}/.dir", b"")
            os.link(f"{writer.root}/{rel}/{sha1}", f"{zone.root}/{rel}/{sha1}")
            os.unlink(f"{zone.root}/{rel}/.dir")
    cached = CachedFunction(
        _square, store=kf.Store(root, fsync=False), identity="bench_scale.square", version="1"
    )
    _memo_entries(writer, cached, args.entries)
    old = time.time() - 10 * _DAY
    for i in range(args.garbage):
        sha1 = writer.obj(b"garbage %d" % i, mark=True)
        for rel in (
            f"sha1/{sha1[:2]}/{sha1[2:4]}/{sha1[4:6]}/{sha1}",
            f".kachery-flows/memo/objects/{sha1[:2]}/{sha1}",
        ):
            os.utime(f"{writer.root}/{rel}", (old, old))
    note(
        f"built {args.objects:,} objects + {args.entries:,} memo entries + "
        f"{args.garbage:,} garbage objects in {fmt_seconds(time.perf_counter() - t0)}"
    )
    return cached


def _quiet(argv: list[str]) -> float:
    """Seconds one CLI command takes, its stdout discarded."""
    sink = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sink):
        code = cli_main(argv)
    seconds = time.perf_counter() - t0
    assert code == 0, (argv, code)
    return seconds


def measure_hits(
    root: Path, small_root: Path, cached: CachedFunction[Any, Any], args: argparse.Namespace
) -> None:
    small = CachedFunction(
        _square, store=kf.Store(small_root, fsync=False), identity="bench_scale.square", version="1"
    )
    _memo_entries(_Writer(small_root), small, 100)
    # Hits on 1,000 random keys of each store, in steady state: the warm-up round calls
    # every key once (a key's first hit in a process refreshes its index entry's mtime).
    rng = random.Random(0)
    big_args = [rng.randrange(args.entries) for _ in range(1000)]
    small_args = [rng.randrange(100) for _ in range(1000)]
    assert cached(big_args[0]) == _square(big_args[0])  # a hit: the entries are real
    cycle = {"big": iter(big_args * 100), "small": iter(small_args * 100)}
    times = per_call(
        {
            "100 entries": lambda: small(next(cycle["small"])),
            f"{args.entries:,} entries": lambda: cached(next(cycle["big"])),
        },
        repeats=args.repeats,
        number=1000,
    )
    small_t, big_t = times.values()
    print_comparison(
        "Memo hit latency against the number of entries",
        [
            {
                "what": f"hit at {args.entries:,} entries",
                "ours": big_t,
                "anchor": small_t,
                "anchor_name": "100 entries",
                "target": "within 10%",
            },
        ],
    )


def measure_maintenance(root: Path, zone_root: Path, args: argparse.Namespace) -> None:
    store = kf.Store(root, fsync=False)
    objects, size = store_size(str(root))
    rows: list[dict[str, Any]] = []
    ls = _quiet(["--root", str(root), "ls-cache"])
    rows.append(
        {
            "what": f"ls-cache, {objects:,} objects",
            "ours": ls,
            "note": f"{objects / ls:,.0f} objects/s",
        }
    )
    t0 = time.perf_counter()
    report = collect_garbage(store, older_than_days=1.0)
    gc_t = time.perf_counter() - t0
    assert len(report.deleted_objects) == args.garbage, report.to_dict()["deleted_bytes"]
    rows.append(
        {
            "what": f"gc, {report.live_records:,} entries",
            "ours": gc_t,
            "note": f"{report.live_records / gc_t:,.0f} entries/s",
            "target": "≥ 50,000/s",
        }
    )
    zoned = kf.Store(root, zone=LocalZone(zone_root), fsync=False)
    evict = args.zone_objects // 2 * args.object_bytes  # half the zone-held objects
    objects, size = store_size(str(root))
    t0 = time.perf_counter()
    pruned = prune(zoned, size - evict)
    prune_t = time.perf_counter() - t0
    assert pruned.evicted == args.zone_objects // 2, pruned.to_dict()
    rows.append(
        {
            "what": f"prune, {objects:,} objects, {pruned.evicted:,} evicted",
            "ours": prune_t,
            "note": f"{objects / prune_t:,.0f} objects/s",
            "target": "≥ 50,000/s",
        }
    )
    t0 = time.perf_counter()
    verified = store.verify()
    verify_t = time.perf_counter() - t0
    assert verified.ok
    rows.append(
        {
            "what": f"verify, {verified.checked:,} small objects",
            "ours": verify_t,
            "note": f"{verified.checked / verify_t:,.0f} objects/s, "
            f"{verified.bytes_checked / verify_t / 1e6:.1f} MB/s",
        }
    )
    print_comparison("Maintenance commands on the big store", rows)


def measure_verify_large(base: Path, args: argparse.Namespace) -> None:
    store = kf.Store(base / "large", fsync=False)
    blobs = [os.urandom(args.large_mib << 20) for _ in range(args.large_count)]
    for blob in blobs:
        store.put_bytes(blob, local=True)
    total = sum(len(b) for b in blobs)
    times = per_call(
        {
            "sha1": lambda: [hashlib.sha1(b).hexdigest() for b in blobs],
            "verify": lambda: store.verify(),
        },
        repeats=args.repeats,
    )
    print_comparison(
        "verify on large objects against SHA-1 in memory",
        [
            {
                "what": f"verify {args.large_count} × {args.large_mib} MiB "
                f"({total / times['verify'] / 1e6:.0f} MB/s)",
                "ours": times["verify"],
                "anchor": times["sha1"],
                "anchor_name": f"hashlib.sha1, {total / times['sha1'] / 1e6:.0f} MB/s",
                "target": "≥ 0.8×",
            },
        ],
    )


def measure_bound_cost(base: Path, args: argparse.Namespace) -> None:
    zone = LocalZone(base / "bound-zone", fsync=False)
    plain = kf.Store(base / "unbounded", zone=zone, fsync=False)
    bounded = kf.Store(base / "bounded", zone=zone, fsync=False, max_size="1T")
    counter = iter(range(10**9))
    times = per_call(
        {
            "put, no bound": lambda: plain.put_bytes(b"u%d" % next(counter)),
            "put, max_size": lambda: bounded.put_bytes(b"b%d" % next(counter)),
        },
        repeats=args.repeats,
        number=200,
    )
    print_comparison(
        "The size bound on the write path (small puts to a directory zone)",
        [
            {
                "what": "put_bytes with max_size",
                "ours": times["put, max_size"],
                "anchor": times["put, no bound"],
                "anchor_name": "no bound",
                "target": "≈ 1×",
            },
        ],
    )


def measure_to_kachery(base: Path, args: argparse.Namespace) -> None:
    import dask
    import dask.array as da

    from kachery_flows.dask import to_kachery

    store = kf.Store(base / "arrays", fsync=False)
    arr = da.random.default_rng(0).standard_normal((args.chunks, 64), chunks=(1, 64))
    values = arr.persist(scheduler="threads")
    rows = []
    for i in range(args.repeats):
        stack = base / f"npy-stack-{i}"
        with dask.config.set(scheduler="threads"):
            t0 = time.perf_counter()
            ref = to_kachery(values + i, store=store)
            ours = time.perf_counter() - t0
            t0 = time.perf_counter()
            da.to_npy_stack(str(stack), values + i, axis=0)
            anchor = time.perf_counter() - t0
        rows.append((ours, anchor))
        shutil.rmtree(stack)
    ours = sorted(r[0] for r in rows)[len(rows) // 2]
    anchor = sorted(r[1] for r in rows)[len(rows) // 2]
    manifest = store.object_path(ref).stat().st_size
    print_comparison(
        f"to_kachery of an array with {args.chunks:,} chunks",
        [
            {
                "what": f"to_kachery ({args.chunks:,} chunks of 512 B; manifest {manifest:,} B)",
                "ours": ours,
                "anchor": anchor,
                "anchor_name": "da.to_npy_stack",
            },
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--object-bytes", type=int, default=64)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--garbage", type=int, default=10_000)
    parser.add_argument("--zone-objects", type=int, default=100_000)
    parser.add_argument("--large-mib", type=int, default=64)
    parser.add_argument("--large-count", type=int, default=8)
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", help="where to build the stores (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the stores")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="kf-scale-", dir=args.dir))
    print(f"stores in {base}; {os.cpu_count()} cores; python {sys.version.split()[0]}")
    try:
        cached = build(base / "big", base / "zone", args)
        measure_hits(base / "big", base / "small", cached, args)
        measure_maintenance(base / "big", base / "zone", args)
        measure_verify_large(base, args)
        measure_bound_cost(base, args)
        measure_to_kachery(base, args)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
