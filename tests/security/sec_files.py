"""Attacks by a zone writer on files: memo entries, refs, objects and zones.json (run in
a child process by ``sec_runner.py``)."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import threading
import time
from pathlib import Path
from typing import Any

from kachery_flows import Store, kachery_cached
from kachery_flows.action_cache import action_cache
from kachery_flows.errors import KacheryError
from kachery_flows.zones import LocalZone, open_zone

RUNS: list[int] = []


def payload(x: int) -> bytes:
    """What :func:`victim_function` computes."""
    return f"result of {x}".encode()


def _victim(store: Store) -> Any:
    @kachery_cached(store=store, version="1")
    def victim_function(x: int) -> bytes:
        RUNS.append(x)
        return payload(x)

    return victim_function


def _zone_pair(work: Path) -> tuple[Store, Store, LocalZone]:
    zone = LocalZone(work / "zone", fsync=False)
    victim = Store(work / "victim", zone=zone, fsync=False)
    intruder = Store(work / "intruder", zone=zone, fsync=False)
    return victim, intruder, zone


def _entry(record: str, result: str, codec: str, size: int | str, token: str = "-") -> str:
    return f"kfm1 {record} {result} {codec} {size} {token}"


def attack_entry_names_a_local_object(work: Path) -> dict[str, Any]:
    """An intruder points a memo key at the victim's local-only object with a wrong size
    (or codec): the victim's object must be neither quarantined nor changed."""
    victim, intruder, zone = _zone_pair(work)
    secret = victim.put_bytes(b"the victim's local-only notes", local=True)
    path = victim.object_path(secret)
    f = _victim(victim)
    record = intruder.put_json({"schema": "x"}).sha1
    outcomes = {}
    size = path.stat().st_size
    for what, entry in {
        "size + 1": _entry(record, secret.sha1, "bytes", size + 1),
        "size - 1": _entry(record, secret.sha1, "bytes", size - 1),
        "size 0": _entry(record, secret.sha1, "bytes", 0),
        "codec json": _entry(record, secret.sha1, "json", size),
        "codec npy": _entry(record, secret.sha1, "npy", size),
        "codec pkl": _entry(record, secret.sha1, "pkl", size),
    }.items():
        x = len(outcomes)
        zone.set_ref(action_cache(victim).ref_name(f.key(x)), entry)
        cached = f.is_cached(x)
        value = f(x)
        outcomes[what] = {"is_cached": cached, "value_ok": value == payload(x)}
    quarantine = victim.quarantine_dir
    return {
        "outcomes": outcomes,
        "object_intact": hashlib.sha1(path.read_bytes()).hexdigest() == secret.sha1,
        "quarantined": sorted(os.listdir(quarantine)) if quarantine.is_dir() else [],
    }


def attack_malformed_entries(work: Path) -> dict[str, Any]:
    """Entries that are not entries (odd digits, sizes, whitespace, lengths, bytes) are
    misses: the call computes, nothing raises."""
    victim, intruder, zone = _zone_pair(work)
    f = _victim(victim)
    result = intruder.put_bytes(payload(0)).sha1
    record = intruder.put_json({"schema": "x"}).sha1
    texts = {
        "Arabic-Indic digits as size": _entry(record, result, "bytes", "١٢"),
        "full-width digits as size": _entry(record, result, "bytes", "１２"),
        "size 10**30": _entry(record, result, "bytes", 10**30),
        "size 2**63": _entry(record, result, "bytes", 2**63),
        "negative size": _entry(record, result, "bytes", -12),
        "em-space separators": _entry(record, result, "bytes", 12).replace(" ", "\u2003"),
        "NUL in the entry": _entry(record, result, "bytes", 12) + "\0",
        "a 100 KB token": _entry(record, result, "bytes", 12, "ab" * 50_000),
        "odd-length token": _entry(record, result, "bytes", 12, "abc"),
        "upper-case hash": _entry(record.upper(), result, "bytes", 12),
        "unknown codec": _entry(record, result, "exe", 12),
        "1 MiB of garbage": "kfm1 " + "x" * (1 << 20),
        "empty": "",
    }
    outcomes = {}
    for i, (what, text) in enumerate(texts.items()):
        zone.set_ref(action_cache(victim).ref_name(f.key(i)), text)
        try:
            cached = f.is_cached(i)
            ok = f(i) == payload(i)
            outcomes[what] = f"miss (is_cached={cached}, value ok={ok})"
        except Exception as exc:
            outcomes[what] = f"raised {type(exc).__name__}: {exc}"
    return {"outcomes": outcomes, "computed": len(RUNS), "planted": len(texts)}


def attack_fifo_refs(work: Path) -> dict[str, Any]:
    """A FIFO planted at a zone ref and at a local ref: no hang, a miss."""
    victim, _intruder, zone = _zone_pair(work)
    f = _victim(victim)
    name = action_cache(victim).ref_name(f.key(1))
    fifo = zone.root / "refs" / name
    fifo.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(fifo)
    started = time.monotonic()
    zone_value = f(1)
    local = Store(work / "local", fsync=False)
    g = _victim(local)
    local_fifo = local.root / ".kachery-flows" / "refs" / action_cache(local).ref_name(g.key(2))
    local_fifo.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(local_fifo)
    local_value = g(2)
    return {
        "zone_ok": zone_value == payload(1),
        "local_ok": local_value == payload(2),
        "seconds": time.monotonic() - started,
    }


def _plant_object(zone: LocalZone, sha1: str) -> Path:
    path = zone.root / "sha1" / sha1[:2] / sha1[2:4] / sha1[4:6] / sha1
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _load(store: Store, sha1: str) -> str:
    try:
        store.load_bytes(f"sha1://{sha1}")
        return "loaded"
    except KacheryError as exc:
        return f"{type(exc).__name__}: {exc}"


def attack_zone_special_files(work: Path) -> dict[str, Any]:
    """Zone objects that are symlinks (to /dev/zero, to the reader's private file), a
    FIFO, or below a symlinked directory: a typed error, no copy, no hang, no hash of the
    reader's file in the message."""
    zone = LocalZone(work / "zone", fsync=False)
    reader = Store(work / "reader", zone=zone, fsync=False)
    private = work / "private.txt"
    private.write_text("the reader's private key")
    private.chmod(0o600)
    private_sha1 = hashlib.sha1(private.read_bytes()).hexdigest()
    outcomes = {}
    for what, make in {
        "symlink to /dev/zero": lambda p: p.symlink_to("/dev/zero"),
        "symlink to the reader's private file": lambda p: p.symlink_to(private),
        "FIFO": lambda p: os.mkfifo(p),
        "directory": lambda p: p.mkdir(),
    }.items():
        sha1 = hashlib.sha1(what.encode()).hexdigest()
        make(_plant_object(zone, sha1))
        outcomes[what] = _load(reader, sha1)
    # sha1/aa -> a directory of the reader's holding a file under the object's name
    elsewhere = work / "reader-dir"
    sha1 = private_sha1
    (elsewhere / sha1[2:4] / sha1[4:6]).mkdir(parents=True)
    (elsewhere / sha1[2:4] / sha1[4:6] / sha1).write_bytes(private.read_bytes())
    (zone.root / "sha1").mkdir(parents=True, exist_ok=True)
    (zone.root / "sha1" / sha1[:2]).symlink_to(elsewhere)
    outcomes["sha1/aa symlinked to the reader's directory"] = _load(reader, sha1)
    staged = list((reader.root / ".kachery-flows" / "staging").glob("*"))
    return {
        "outcomes": outcomes,
        "private_sha1": private_sha1,
        "staged": len(staged),
        "cached": sorted(reader.iter_hashes()),
    }


def attack_sparse_zone_object(work: Path, size: int) -> dict[str, Any]:
    """A sparse file of ``size`` bytes (no disk for the writer) as a zone object: it must
    not be copied into the reader's store (the child's file-size limit would kill it)."""
    zone = LocalZone(work / "zone", fsync=False)
    reader = Store(work / "reader", zone=zone, fsync=False)
    sha1 = hashlib.sha1(b"sparse").hexdigest()
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, limit[1]))
    with open(_plant_object(zone, sha1), "wb") as f:
        f.truncate(size)
    resource.setrlimit(resource.RLIMIT_FSIZE, limit)
    started = time.monotonic()
    outcome = _load(reader, sha1)
    return {"outcome": outcome, "seconds": time.monotonic() - started}


def attack_swap_race(work: Path, rounds: int) -> dict[str, Any]:
    """A writer swaps a zone object between the real file and a symlink to /dev/zero as
    fast as it can while the reader fetches it: every fetch is the object or a typed
    error (the check is made on the opened descriptor, so there is no window)."""
    zone = LocalZone(work / "zone", fsync=False)
    reader = Store(work / "reader", zone=zone, fsync=False)
    data = b"the real object" * 1000
    sha1 = hashlib.sha1(data).hexdigest()
    path = _plant_object(zone, sha1)
    real, link = path.with_suffix(".real"), path.with_suffix(".link")
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            for source in (real, link):
                if source is real:
                    real.write_bytes(data)
                else:
                    link.unlink(missing_ok=True)
                    link.symlink_to("/dev/zero")
                os.replace(source, path)
                time.sleep(0.002)  # both states are seen by the reader

    swapper = threading.Thread(target=swap)
    swapper.start()
    outcomes: dict[str, int] = {}
    try:
        for _ in range(rounds):
            outcome = _load(reader, sha1).split(":")[0]
            if outcome == "loaded":
                ok = reader.load_bytes(f"sha1://{sha1}") == data
                outcome = "loaded, correct" if ok else "loaded, WRONG"
                reader.object_path(f"sha1://{sha1}").unlink()
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    finally:
        stop.set()
        swapper.join()
    return {"outcomes": outcomes}


def attack_zones_json(work: Path) -> dict[str, Any]:
    """zones.json that is a symlink, a FIFO, world-writable, huge or nested too deeply."""
    good = {"lab": {"url": f"file://{work / 'lab'}"}}
    target = work / "mine.json"
    target.write_text(json.dumps(good))
    outcomes = {}
    for what, make in {
        "symlink to a file I own": lambda p: p.symlink_to(target),
        "FIFO": lambda p: os.mkfifo(p),
        "world-writable": lambda p: (p.write_text(json.dumps(good)), p.chmod(0o666)),
        "10 MB": lambda p: p.write_text(json.dumps({"x": "y" * 10_000_000})),
        "nested 1M deep": lambda p: p.write_text("[" * 1_000_000),
    }.items():
        root = work / f"root-{len(outcomes)}"
        root.mkdir()
        make(root / "zones.json")
        try:
            zone = open_zone("lab", root=root)
            outcomes[what] = f"opened {zone.name}"
        except KacheryError as exc:
            outcomes[what] = f"{type(exc).__name__}: {exc}"
    return {"outcomes": outcomes}


def attack_zones_json_names_code(work: Path) -> dict[str, Any]:
    """zones.json entries that name an importable module in every way a spec could: a key,
    a URL scheme, a ``module:Class`` URL, a dotted path as the scheme."""
    import sys

    planted = work / "planted"
    planted.mkdir()
    ran = work / "planted-code-ran"
    (planted / "kf_planted_code.py").write_text(
        f"open({str(ran)!r}, 'w').close()\nclass Thing: pass\n"
    )
    sys.path.insert(0, str(planted))
    root = work / "root"
    root.mkdir()
    entries = {
        "by-key": {"url": f"file://{work / 'z'}", "class": "kf_planted_code:Thing"},
        "by-module-key": {"url": f"file://{work / 'z'}", "module": "kf_planted_code"},
        "by-scheme": {"url": "kf_planted_code://bucket/x"},
        "by-colon-path": {"url": "kf_planted_code:Thing"},
        "by-dotted-scheme": {"url": "kf_planted_code.Thing://bucket/x"},
    }
    (root / "zones.json").write_text(json.dumps(entries))
    (root / "zones.json").chmod(0o600)
    outcomes = {}
    for name in entries:
        try:
            zone = open_zone(name, root=root)
            outcomes[name] = f"opened {zone.name}"
        except KacheryError as exc:
            outcomes[name] = f"{type(exc).__name__}: {exc}"
    return {
        "outcomes": outcomes,
        "imported": "kf_planted_code" in sys.modules,
        "ran": ran.exists(),
    }
