"""Loading and publishing through the kachery network: kachery-flows vs kachery 2's client.

Run: ``python benchmarks/bench_kachery_network.py [--sizes-mib 16 64] [--repeats 5]``

Both clients talk to the same local protocol server (``tests/kachery_network``) on
127.0.0.1, so the figures compare client overhead, not the internet. kachery-flows
hashes every download before it enters the cache; kachery 2 renames the bytes into its
cache unverified. A bare ``findFile`` + streamed GET with ``requests`` is the floor.
Each round uses fresh caches (and, for uploads, fresh content); cases run interleaved
and the tables show medians.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

import requests
from _common import interleaved, median, print_table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "kachery_network"))

from kachery_protocol_server import KacheryProtocolServer, User, ZoneConfig

API_KEY = "BenchmarkKey0123456789abcdefghij"


def bench_size(server: KacheryProtocolServer, size_mib: int, repeats: int, work: Path) -> None:
    import kachery as ka
    from kachery.client._load_sha1_file_from_cloud import _load_sha1_file_from_cloud

    import kachery_flows as kf
    from kachery_flows.zones.kachery_network import KacheryNetworkZone

    data = bytearray(os.urandom(size_mib * 2**20))
    sha1 = server.add_object("default", bytes(data))
    zone = KacheryNetworkZone("default")

    def reset(r: int) -> None:
        for d in ("kf", "k2", "raw"):
            shutil.rmtree(work / d, ignore_errors=True)
        (work / "raw").mkdir()
        os.environ["KACHERY_DIR"] = str(work / "k2")

    def floor(r: int) -> None:
        body = {"type": "findFileRequest", "hashAlg": "sha1", "hash": sha1, "zoneName": "default"}
        found = requests.post(f"{server.url}/api/findFile", json=body, timeout=60).json()
        with (
            requests.get(found["url"], stream=True, timeout=60) as resp,
            open(work / "raw" / sha1, "wb") as f,
        ):
            for chunk in resp.iter_content(1 << 20):
                f.write(chunk)

    def kachery2(r: int) -> None:
        _load_sha1_file_from_cloud(sha1, verbose=False, zone="default")

    def flows(r: int) -> None:
        kf.Store(work / "kf", zone=zone, fsync=False).load_file(f"kachery:default:sha1:{sha1}")

    times = interleaved(
        {
            "requests GET (no hash)": floor,
            "kachery 2 load (unverified)": kachery2,
            "kachery-flows load (verified)": flows,
        },
        repeats,
        setup=reset,
    )
    rows = [(name, median(ts)) for name, ts in times.items()]
    print_table(f"load {size_mib} MiB from the kachery network", rows, "requests GET (no hash)")

    src = work / "upload.bin"

    def fresh_upload(r: int) -> None:
        reset(r)
        server.bucket.clear()
        data[:8] = r.to_bytes(8, "little")
        src.write_bytes(data)

    def kachery2_store(r: int) -> None:
        ka.store_file(str(src))

    def flows_store(r: int) -> None:
        store = kf.Store(work / "kf", zone=zone, fsync=False)
        store.store_file(src)

    times = interleaved(
        {"kachery 2 store_file": kachery2_store, "kachery-flows store_file": flows_store},
        repeats,
        setup=fresh_upload,
    )
    rows = [(name, median(ts)) for name, ts in times.items()]
    print_table(f"publish {size_mib} MiB to the kachery network", rows, "kachery 2 store_file")
    assert hashlib.sha1(src.read_bytes()).hexdigest() in "".join(server.bucket)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mib", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    server = KacheryProtocolServer()
    server.users_by_key[API_KEY] = User("github|bench")
    server.zones["default"] = ZoneConfig(members={"github|bench": (True, True)})
    with server.running(), tempfile.TemporaryDirectory() as tmp:
        # kachery 2 reads KACHERY_BASE_URL when it is imported: set it first.
        os.environ.update(
            KACHERY_BASE_URL=server.url,
            KACHERY_API_KEY=API_KEY,
            KACHERY_ZONE="default",
            KACHERY_DIR=str(Path(tmp) / "k2"),
        )
        for size in args.sizes_mib:
            bench_size(server, size, args.repeats, Path(tmp))


if __name__ == "__main__":
    main()
