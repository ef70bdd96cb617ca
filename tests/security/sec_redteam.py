"""The red-team pass: attack classes beyond the reviewed ones (run in a child process by
``sec_runner.py``)."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from kachery_flows import Store, kachery_cached, parse_uri
from kachery_flows.action_cache import CacheEntry, action_cache
from kachery_flows.errors import KacheryError
from kachery_flows.records import RECORD_SCHEMA, read_record_object


def attack_huge_uris_and_labels(work: Path) -> dict[str, Any]:
    """10 MB URIs, labels and zone names: refused before any work, in bounded time."""
    sha1 = "a" * 40
    outcomes = {}
    for what, text in {
        "10 MB label": f"sha1://{sha1}?label=" + "x" * 10_000_000,
        "10 MB path-style label": f"sha1://{sha1}/" + "x/" * 5_000_000,
        "10 MB kachery zone name": "kachery:" + "z" * 10_000_000 + f":sha1:{sha1}",
        "1M query keys": f"sha1://{sha1}?" + "&a=b" * 1_000_000,
    }.items():
        started = time.monotonic()
        try:
            parse_uri(text)
            outcomes[what] = "accepted"
        except KacheryError as exc:
            outcomes[what] = type(exc).__name__
        outcomes[what] += f" in {time.monotonic() - started:.2f} s"
    return {"outcomes": outcomes}


def _npy_bomb() -> bytes:
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }"
    text = (header + " " * (118 - len(header)) + "\n").encode("latin1")
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + b"\0" * 64


def attack_npy_bomb_as_memo_result(work: Path) -> dict[str, Any]:
    """An entry whose (intact, hash-correct) npy result announces 8 TB: a miss that
    leaves the object alone, in bounded memory; also in format 2.0 and 3.0 headers."""
    store = Store(work / "root", fsync=False)
    runs: list[int] = []

    @kachery_cached(store=store, version="1")
    def f(x: int) -> Any:
        runs.append(x)
        return np.arange(3.0)

    cache = action_cache(store)
    outcomes = {}
    for version in (b"\x01\x00", b"\x02\x00", b"\x03\x00"):
        data = _npy_bomb()
        if version != b"\x01\x00":
            text = data[10:]
            data = b"\x93NUMPY" + version + (len(text) - 64).to_bytes(4, "little") + text
        ref = store.put_bytes(data)
        record = store.put_json({"schema": RECORD_SCHEMA}).sha1
        x = len(outcomes)
        cache.put(f.key(x), "f", CacheEntry(record, ref.sha1, "npy", len(data)))
        value = f(x)
        outcomes[f"format {version[0]}.0"] = {
            "value_ok": bool(np.array_equal(value, np.arange(3.0))),
            "object_kept": store.object_path(ref).is_file(),
        }
    return {"outcomes": outcomes, "runs": len(runs)}


def attack_deep_records(work: Path) -> dict[str, Any]:
    """Records nested 1M deep, or 1 MiB + 1 bytes: unreadable (None), not a crash."""
    store = Store(work / "root", fsync=False)
    deep = store.put_bytes(b'{"schema": ' + b"[" * 1_000_000).sha1
    big = store.put_bytes(b'{"schema": "' + b"x" * (1 << 20) + b'"}').sha1
    return {"deep": read_record_object(store, deep), "big": read_record_object(store, big)}


def attack_npy_headers_every_version(work: Path) -> dict[str, Any]:
    """load_npy of bombs in format 1.0, 2.0 and 3.0 and of an unknown version."""
    store = Store(work / "root", fsync=False)
    outcomes = {}
    base = _npy_bomb()
    text = base[10:]
    for what, data in {
        "1.0": base,
        "2.0": b"\x93NUMPY\x02\x00" + (len(text) - 64).to_bytes(4, "little") + text,
        "3.0": b"\x93NUMPY\x03\x00" + (len(text) - 64).to_bytes(4, "little") + text,
        "9.0": b"\x93NUMPY\x09\x00" + (len(text) - 64).to_bytes(4, "little") + text,
    }.items():
        ref = store.put_bytes(data)
        for mmap_mode in (None, "r"):
            try:
                store.load_npy(ref, mmap_mode=mmap_mode)
                outcomes[f"{what} {mmap_mode}"] = "loaded"
            except KacheryError as exc:
                outcomes[f"{what} {mmap_mode}"] = type(exc).__name__
    buf = io.BytesIO()
    np.save(buf, np.zeros(3, dtype=[("é", "<f8")]))
    ok = store.load_npy(store.put_bytes(buf.getvalue()))
    return {"outcomes": outcomes, "latin1_fields_ok": ok.shape == (3,)}


def attack_hard_linked_zone_object(work: Path) -> dict[str, Any]:
    """A zone object hard-linked to another file of the zone writer's (hard links to files
    the writer cannot read are refused by the kernel: fs.protected_hardlinks)."""
    from kachery_flows.zones import LocalZone

    zone = LocalZone(work / "zone", fsync=False)
    reader = Store(work / "reader", zone=zone, fsync=False)
    other = work / "writer-file"
    other.write_bytes(b"not the object")
    sha1 = "b" * 40
    path = zone.root / "sha1" / sha1[:2] / sha1[2:4] / sha1[4:6] / sha1
    path.parent.mkdir(parents=True)
    os.link(other, path)
    try:
        reader.load_bytes(f"sha1://{sha1}")
        outcome = "loaded"
    except KacheryError as exc:
        outcome = type(exc).__name__
    try:
        protected = Path("/proc/sys/fs/protected_hardlinks").read_text().strip()
    except OSError:
        protected = "unknown"
    return {
        "outcome": outcome,
        "cached": sorted(reader.iter_hashes()),
        "protected_hardlinks": protected,
    }
