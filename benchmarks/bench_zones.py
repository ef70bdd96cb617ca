"""Sharing one large object through zones: kachery-flows vs the raw copy tools.

Run: ``python benchmarks/bench_zones.py [--size-mib 256] [--repeats 3]``

* S3: moto's S3 server (in a subprocess, on 127.0.0.1) — ``Store.upload`` /
  ``Store.download`` through an ``s3://`` zone vs s3fs ``put_file`` / ``get_file`` of the
  same file with the same endpoint.
* Shared directory: ``Store.upload`` / ``Store.download`` through a ``LocalZone`` vs
  ``shutil.copyfile``.

The zone rows include everything kachery-flows does: the existence check before an
upload, the SHA-1 of the source before it leaves (nothing unverified is published), and
on download the SHA-1 of the received bytes before they are renamed into the cache. The
"+ sha1" rows are the raw tool followed by hashing the result, i.e. a verified copy done
by hand. Nothing is fsynced in any case (same durability). Cases run interleaved; the
tables show medians.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import interleaved, median, print_table

_MOTO = """
import sys, time
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


def _sha1(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(8 << 20):
            h.update(chunk)
    return h.hexdigest()


def _make_file(path: Path, size_mib: int) -> None:
    with open(path, "wb") as f:
        for _ in range(size_mib):
            f.write(os.urandom(1 << 20))


def _table(title: str, times: dict[str, list[float]], baseline: str) -> None:
    print_table(title, [(name, median(ts)) for name, ts in times.items()], baseline)


def bench_s3(src: Path, work: Path, repeats: int) -> None:
    import s3fs

    from kachery_flows import Store
    from kachery_flows.zones import FsspecZone

    server = subprocess.Popen(
        [sys.executable, "-c", _MOTO],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        endpoint = f"http://127.0.0.1:{server.stdout.readline().strip()}"
        options = {"endpoint_url": endpoint, "key": "bench", "secret": "bench"}
        raw = s3fs.S3FileSystem(skip_instance_cache=True, **options)
        raw.mkdir("bench")
        zone = FsspecZone("s3://bench/zone", storage_options=options)
        store = Store(work / "s3-cache", zone=zone, fsync=False)
        ref = store.put_file(src, local=True)
        raw_key = "bench/raw/object"
        dest = work / "s3-dest"

        def reset_upload(r: int) -> None:
            zone.delete(ref.sha1)
            if raw.exists(raw_key):
                raw.rm_file(raw_key)

        uploads = interleaved(
            {
                "s3fs put_file": lambda r: raw.put_file(str(src), raw_key),
                "s3fs put_file + sha1": lambda r: (_sha1(src), raw.put_file(str(src), raw_key)),
                "kachery-flows Store.upload (s3 zone)": lambda r: store.upload(ref),
            },
            repeats,
            reset_upload,
        )
        store.upload(ref)
        zone_key = f"bench/zone/sha1/{ref.sha1[:2]}/{ref.sha1[2:4]}/{ref.sha1[4:6]}/{ref.sha1}"

        def reset_download(r: int) -> None:
            store.object_path(ref).unlink(missing_ok=True)
            dest.unlink(missing_ok=True)

        downloads = interleaved(
            {
                "s3fs get_file": lambda r: raw.get_file(zone_key, str(dest)),
                "s3fs get_file + sha1": lambda r: (raw.get_file(zone_key, str(dest)), _sha1(dest)),
                "kachery-flows Store.download (s3 zone)": lambda r: store.download(ref),
            },
            repeats,
            reset_download,
        )
        assert _sha1(Path(store.download(ref))) == ref.sha1
    finally:
        server.communicate("", timeout=60)
    _table("S3 upload (moto on 127.0.0.1)", uploads, "s3fs put_file")
    _table("S3 download (moto on 127.0.0.1)", downloads, "s3fs get_file")


def bench_directory(src: Path, work: Path, repeats: int) -> None:
    from kachery_flows import Store
    from kachery_flows.zones import LocalZone

    zone = LocalZone(work / "shared", fsync=False)
    store = Store(work / "dir-cache", zone=zone, fsync=False)
    ref = store.put_file(src, local=True)
    raw_dest = work / "raw-copy"
    zone_path = zone.root / "sha1" / ref.sha1[:2] / ref.sha1[2:4] / ref.sha1[4:6] / ref.sha1

    def reset_upload(r: int) -> None:
        zone.delete(ref.sha1)
        raw_dest.unlink(missing_ok=True)

    uploads = interleaved(
        {
            "shutil.copyfile": lambda r: shutil.copyfile(src, raw_dest),
            "shutil.copyfile + sha1": lambda r: (shutil.copyfile(src, raw_dest), _sha1(raw_dest)),
            "kachery-flows Store.upload (shared dir)": lambda r: store.upload(ref),
        },
        repeats,
        reset_upload,
    )
    store.upload(ref)

    def reset_download(r: int) -> None:
        store.object_path(ref).unlink(missing_ok=True)
        raw_dest.unlink(missing_ok=True)

    downloads = interleaved(
        {
            "shutil.copyfile": lambda r: shutil.copyfile(zone_path, raw_dest),
            "shutil.copyfile + sha1": lambda r: (
                shutil.copyfile(zone_path, raw_dest),
                _sha1(raw_dest),
            ),
            "kachery-flows Store.download (shared dir)": lambda r: store.download(ref),
        },
        repeats,
        reset_download,
    )
    _table("Shared-directory upload", uploads, "shutil.copyfile")
    _table("Shared-directory download", downloads, "shutil.copyfile")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256, help="object size (MiB)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--skip-s3", action="store_true", help="only the shared directory")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kf-bench-zones-"))
    try:
        src = work / "object.bin"
        _make_file(src, args.size_mib)
        print(f"object: {args.size_mib} MiB, {args.repeats} interleaved rounds, medians")
        bench_directory(src, work, args.repeats)
        if not args.skip_s3:
            bench_s3(src, work, args.repeats)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
