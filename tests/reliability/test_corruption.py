"""Every single-bit flip and every truncation of a stored object is detected.

The object is an ``.npy`` array (a 128-byte header and a 2 KiB payload). Every bit of the
header is flipped, plus a random sample of payload bits, one at a time; then the object is
truncated to each length class (empty, one byte, header only, half, one byte short),
extended by one byte, and replaced by another valid object (misnamed). Each damaged copy
must be caught

* by verified local reads (``load_*(verify=True)``) and by ``Store.verify``;
* when it is in a zone (a shared directory, and the same directory over HTTP): loads raise
  ``CorruptObjectError`` and nothing enters the reader's cache;
* when it is a memoized result: the hit is a miss, the call recomputes, the right value
  is returned and the store is repaired.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rel_helpers import (
    count,
    flip_bit,
    npy_bytes,
    npy_header_length,
    overwrite,
    staged,
    truncation_lengths,
)

from kachery_flows import CorruptObjectError, Ref, Store, kachery_cached
from kachery_flows._retry import RetryPolicy
from kachery_flows.testing import DirectoryHTTPServer
from kachery_flows.zones import HttpZone, LocalZone

ARRAY = np.random.default_rng(8).standard_normal(256)
DATA = npy_bytes(ARRAY)
HEADER = npy_header_length(DATA)
OTHER = npy_bytes(np.zeros(256))  # a valid object of the same size and another hash


def bits_to_flip(
    size: int, header: int, payload_samples: int, seed: int, header_samples: int | None = None
) -> list[int]:
    """Header bits (all of them, or ``header_samples`` random ones) and
    ``payload_samples`` distinct random payload bits."""
    rng = random.Random(seed)
    payload = rng.sample(range(header * 8, size * 8), payload_samples)
    head = list(range(header * 8))
    if header_samples is not None:
        head = sorted(rng.sample(head, header_samples))
    return head + sorted(payload)


def damaged_copies() -> Iterator[tuple[str, bytes]]:
    """Every truncation class, one appended byte, and another object's bytes."""
    for name, length in truncation_lengths(len(DATA), HEADER).items():
        yield f"truncated to {name}", DATA[:length]
    yield "one byte appended", DATA + b"\0"
    yield "misnamed (another valid object)", OTHER


def test_header_is_what_the_test_assumes() -> None:
    assert DATA.startswith(b"\x93NUMPY") and HEADER == 128 and len(DATA) == 128 + 2048


def _raises_corrupt(load: Callable[[], object]) -> bool:
    try:
        load()
    except CorruptObjectError:
        return True
    return False


def test_local_bit_flips_are_detected_by_verified_reads_and_verify(
    store: Store, figures: Any
) -> None:
    ref = store.put_npy(ARRAY)
    path = store.object_path(ref)
    assert path.read_bytes() == DATA
    path.chmod(0o644)
    bits = bits_to_flip(len(DATA), HEADER, count("PAYLOAD_FLIPS", 1000), seed=1)
    readers: dict[str, Callable[[], object]] = {
        "load_npy": lambda: store.load_npy(ref, verify=True),
        "load_bytes": lambda: store.load_bytes(ref, verify=True),
        "load_file": lambda: store.load_file(ref, verify=True),
    }
    detected = dict.fromkeys(readers, 0)
    by_verify = 0
    for bit in bits:
        flip_bit(path, bit)
        for name, load in readers.items():
            detected[name] += _raises_corrupt(load)
        by_verify += store.verify().corrupt == [ref.sha1]
        flip_bit(path, bit)
    assert detected == dict.fromkeys(readers, len(bits))
    assert by_verify == len(bits)
    assert path.read_bytes() == DATA and store.verify().ok
    header_bits = HEADER * 8
    figures.add(
        "corruption",
        f"single-bit flips, local store ({header_bits} header + {len(bits) - header_bits} "
        "payload bits): detected by load_npy/load_bytes/load_file(verify=True)",
        f"{len(bits)} flipped / {min(detected.values())} detected",
    )
    figures.add(
        "corruption",
        "single-bit flips detected by Store.verify()",
        f"{len(bits)} flipped / {by_verify} detected",
    )


def test_local_truncations_and_substitutions_are_detected(store: Store, figures: Any) -> None:
    ref = store.put_npy(ARRAY)
    path = store.object_path(ref)
    cases = 0
    for what, data in damaged_copies():
        overwrite(path, data)
        assert _raises_corrupt(lambda: store.load_npy(ref, verify=True)), what
        assert _raises_corrupt(lambda: store.load_bytes(ref, verify=True)), what
        assert store.verify().corrupt == [ref.sha1], what
        cases += 1
    report = store.verify(quarantine=True)
    assert report.quarantined and not path.exists()
    figures.add(
        "corruption",
        "truncations (0, 1, header-only, mid, size-1), +1 byte, "
        "misnamed: detected by verified reads and verify()",
        f"{cases}/{cases}",
    )


def test_storing_the_real_bytes_again_repairs_a_damaged_object(store: Store, figures: Any) -> None:
    """A damaged object under a valid name is replaced when its content is stored again,
    never silently kept (git's collision check; B.12 #6)."""
    ref = store.put_npy(ARRAY)
    path = store.object_path(ref)
    repaired = 0
    cases = [
        ("one bit flipped", DATA[:200] + bytes([DATA[200] ^ 4]) + DATA[201:]),
        *damaged_copies(),
    ]
    for what, data in cases:
        overwrite(path, data)
        assert store.put_npy(ARRAY) == ref
        assert path.read_bytes() == DATA, what
        repaired += 1
    assert store.verify().ok and not staged(store)
    figures.add(
        "corruption",
        "damaged objects repaired by storing their content again",
        f"{repaired}/{len(cases)}",
    )


# ------------------------------------------------------------------------------ zones
@pytest.fixture
def zone_server(scratch: Path) -> Iterator[DirectoryHTTPServer]:
    """An HTTP server over a zone directory (in memory: thousands of fetches follow)."""
    with DirectoryHTTPServer(scratch / "zone") as server:
        yield server


@pytest.fixture
def zone_dir(zone_server: DirectoryHTTPServer) -> Path:
    """A zone directory that is also served over HTTP."""
    return zone_server.directory


@pytest.fixture
def zone_readers(
    zone_dir: Path, zone_server: DirectoryHTTPServer, scratch: Path, fast_retry: RetryPolicy
) -> dict[str, Store]:
    """Stores with an empty cache in front of the zone: as a directory, and over HTTP."""
    return {
        "LocalZone": Store(scratch / "via-dir", zone=LocalZone(zone_dir, fsync=False)),
        "HttpZone": Store(scratch / "via-http", zone=HttpZone(zone_server.url, retry=fast_retry)),
    }


def _publish_to_zone(zone_dir: Path, workdir: Path) -> tuple[Ref, Path]:
    producer = Store(workdir / "producer", zone=LocalZone(zone_dir, fsync=False), fsync=False)
    ref = producer.put_npy(ARRAY)
    zone_path = LocalZone(zone_dir)._path(ref.sha1)
    assert zone_path.read_bytes() == DATA
    zone_path.chmod(0o644)
    return ref, zone_path


def _rejects_and_caches_nothing(reader: Store, ref: Ref, load: str) -> bool:
    loaders: dict[str, Callable[[], object]] = {
        "load_npy": lambda: reader.load_npy(ref),
        "load_bytes": lambda: reader.load_bytes(ref),
        "load_file": lambda: reader.load_file(ref),
    }
    rejected = _raises_corrupt(loaders[load])
    return rejected and not reader.object_path(ref).exists() and not staged(reader)


def test_bit_flips_in_a_zone_never_reach_the_cache(
    zone_dir: Path, zone_readers: dict[str, Store], scratch: Path, figures: Any
) -> None:
    ref, zone_path = _publish_to_zone(zone_dir, scratch)
    bits = bits_to_flip(
        len(DATA),
        HEADER,
        count("ZONE_PAYLOAD_FLIPS", 500),
        seed=2,
        header_samples=count("ZONE_HEADER_FLIPS", 500),
    )
    loads = ("load_npy", "load_bytes", "load_file")
    rejected = dict.fromkeys(zone_readers, 0)
    for i, bit in enumerate(bits):
        flip_bit(zone_path, bit)
        for name, reader in zone_readers.items():
            rejected[name] += _rejects_and_caches_nothing(reader, ref, loads[i % 3])
        flip_bit(zone_path, bit)
    assert rejected == dict.fromkeys(zone_readers, len(bits))
    for reader in zone_readers.values():  # the intact object loads, verified, once restored
        assert np.array_equal(reader.load_npy(ref), ARRAY)
        assert reader.object_path(ref).read_bytes() == DATA
    for name in zone_readers:
        figures.add(
            "corruption",
            f"single-bit flips in a zone (header and payload), loads "
            f"via {name} (CorruptObjectError, nothing cached)",
            f"{len(bits)} flipped / {rejected[name]} rejected",
        )


def test_truncated_and_substituted_zone_objects_never_reach_the_cache(
    zone_dir: Path, zone_readers: dict[str, Store], scratch: Path, figures: Any
) -> None:
    ref, zone_path = _publish_to_zone(zone_dir, scratch)
    cases = 0
    for what, data in damaged_copies():
        overwrite(zone_path, data)
        for reader in zone_readers.values():
            for load in ("load_npy", "load_bytes", "load_file"):
                assert _rejects_and_caches_nothing(reader, ref, load), (what, reader)
        cases += 1
    figures.add(
        "corruption",
        "truncated / extended / misnamed zone objects rejected "
        "(LocalZone and HttpZone, nothing cached)",
        f"{cases}/{cases} per zone",
    )


def test_verified_reads_repair_a_damaged_local_copy_from_the_zone(
    scratch: Path, figures: Any
) -> None:
    """The damaged local copy goes to the quarantine, a verified copy comes from the zone,
    and the caller gets the right bytes."""
    zone_dir = scratch / "zone"
    ref, _zone_path = _publish_to_zone(zone_dir, scratch)
    store = Store(scratch / "producer", zone=LocalZone(zone_dir, fsync=False))
    path = store.object_path(ref)
    cases = [
        ("one bit flipped", DATA[:500] + bytes([DATA[500] ^ 2]) + DATA[501:]),
        *damaged_copies(),
    ]
    for what, data in cases:
        overwrite(path, data)
        assert np.array_equal(store.load_npy(ref, verify=True), ARRAY), what
        assert path.read_bytes() == DATA, what
    assert len(list(store.quarantine_dir.iterdir())) == len(cases)
    no_zone = Store(store.root)
    overwrite(path, DATA[:-1])
    with pytest.raises(CorruptObjectError, match="verify --quarantine"):
        no_zone.load_npy(ref, verify=True)
    figures.add(
        "corruption",
        "verified local reads of damaged copies repaired from the zone",
        f"{len(cases)}/{len(cases)}",
    )


def test_uploading_again_repairs_a_damaged_zone_copy(scratch: Path, figures: Any) -> None:
    """The remedy a CorruptObjectError from a zone names (push a good copy) works."""
    zone_dir = scratch / "zone"
    ref, zone_path = _publish_to_zone(zone_dir, scratch)
    producer = Store(scratch / "producer", zone=LocalZone(zone_dir, fsync=False))
    reader = Store(scratch / "reader", zone=LocalZone(zone_dir, fsync=False))
    cases = [
        ("one bit flipped", DATA[:300] + bytes([DATA[300] ^ 1]) + DATA[301:]),
        *damaged_copies(),
    ]
    for what, data in cases:
        overwrite(zone_path, data)
        with pytest.raises(CorruptObjectError, match="push"):
            reader.load_npy(ref)
        assert producer.upload(ref)
        assert zone_path.read_bytes() == DATA, what
        assert np.array_equal(reader.load_npy(ref), ARRAY)
        reader.object_path(ref).unlink()
    figures.add(
        "corruption",
        "damaged zone copies repaired by uploading a good copy",
        f"{len(cases)}/{len(cases)}",
    )


# ----------------------------------------------------------------------------- memo
RESULTS: dict[str, Any] = {
    "npy": ARRAY,
    "json": {"values": [float(v) for v in ARRAY[:100]]},
    "bytes": DATA,
    "pkl": (1, "tuple", ARRAY[:8].tolist()),
}


def _expected(codec: str) -> Any:
    return RESULTS[codec]


def _equal(a: Any, b: Any) -> bool:
    if isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and a.shape == b.shape and bool((a == b).all())
    return bool(a == b) and type(a) is type(b)


@pytest.mark.parametrize("codec", sorted(RESULTS))
def test_memo_hits_on_damaged_results_recompute(codec: str, figures: Any) -> None:
    runs: list[str] = []

    @kachery_cached(version="1")
    def produce(which: str) -> Any:
        runs.append(which)
        return _expected(which)

    assert _equal(produce(codec), _expected(codec))
    ref = produce.ref(codec)
    assert ref.codec == codec
    path = Store().object_path(ref)
    good = path.read_bytes()
    header = npy_header_length(good) if codec == "npy" else 0
    bits = bits_to_flip(len(good), header, count("MEMO_FLIPS", 250), seed=3)
    damages: list[tuple[str, bytes]] = [
        (
            f"bit {bit}",
            bytes(b ^ (1 << bit % 8) if i == bit // 8 else b for i, b in enumerate(good)),
        )
        for bit in bits
    ]
    damages += [
        (f"truncated to {n}", good[:k]) for n, k in truncation_lengths(len(good), header).items()
    ]
    damages += [("one byte appended", good + b"\0")]
    wrong = 0
    for what, data in damages:
        overwrite(path, data)
        before = len(runs)
        value = produce(codec)
        wrong += not _equal(value, _expected(codec))
        assert len(runs) == before + 1, what  # a miss: recomputed
        assert path.read_bytes() == good, what  # and repaired
        assert hashlib.sha1(path.read_bytes()).hexdigest() == ref.sha1
    assert wrong == 0
    assert _equal(produce(codec), _expected(codec)) and len(runs) == len(damages) + 1
    assert Store().verify().ok
    figures.add(
        "corruption",
        f"memo hits on damaged {codec} results (bit flips + "
        "truncations): recomputed, wrong values returned",
        f"{len(damages)} damaged / {len(damages)} recomputed / {wrong} wrong",
    )
