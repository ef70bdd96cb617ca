"""Storing and loading large arrays: kachery-flows vs np.save (+ SHA-1) vs kachery-cloud.

Run: ``python benchmarks/bench_store.py [--sizes-mib 256 1024] [--repeats 3]``

Each round stores distinct content (the first element changes), so nothing is skipped as
already stored; cases run interleaved and the table shows medians. "durable" cases fsync
the file, as kachery-flows does by default.
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

import numpy as np
from _common import interleaved, median, note, print_table


def _fsync_path(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _sha1_file(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        while chunk := f.read(8 << 20):
            h.update(chunk)
    return h.hexdigest()


def bench_size(size_mib: int, repeats: int, work: Path) -> None:
    import kachery_cloud as kcl

    import kachery_flows as kf

    arr = np.random.default_rng(0).standard_normal(size_mib * 2**20 // 8)
    durable = kf.Store(work / "kf-durable", fsync=True)
    fast = kf.Store(work / "kf-nofsync", fsync=False)
    plain = work / "plain.npy"

    def reset(r: int) -> None:
        arr[0] = float(r) + 0.5
        for d in ("kf-durable", "kf-nofsync", "kc"):
            shutil.rmtree(work / d, ignore_errors=True)
        plain.unlink(missing_ok=True)
        os.sync()

    def np_save_fsync(r: int) -> None:
        np.save(plain, arr)
        _fsync_path(plain)

    def np_save_sha1_fsync(r: int) -> None:
        np.save(plain, arr)
        _fsync_path(plain)
        _sha1_file(plain)

    def np_save(r: int) -> None:
        np.save(plain, arr)

    def np_save_sha1(r: int) -> None:
        np.save(plain, arr)
        _sha1_file(plain)

    cases = {
        "np.save + fsync": np_save_fsync,
        "kf.store_npy (fsync)": lambda r: durable.store_npy(arr),
        "np.save + fsync + sha1 pass": np_save_sha1_fsync,
        "np.save": np_save,
        "kf.store_npy (no fsync)": lambda r: fast.store_npy(arr),
        "np.save + sha1 pass": np_save_sha1,
        "kachery-cloud store_npy_local": lambda r: kcl.store_npy_local(arr),
    }
    times = interleaved(cases, repeats, setup=reset)
    rows = [(name, median(ts)) for name, ts in times.items()]
    print_table(f"store a {size_mib} MiB float64 array", rows[:3], "np.save + fsync")
    print_table(f"store a {size_mib} MiB float64 array, no fsync", rows[3:], "np.save")
    kc = median(times["kachery-cloud store_npy_local"])
    kfs = median(times["kf.store_npy (no fsync)"])
    note(
        f"{size_mib} MiB: kachery-cloud store_npy_local / kf.store_npy (no fsync) = "
        f"{kc / kfs:.2f}× (target ≥ 3×)"
    )

    uri = fast.store_npy(arr)
    kc_uri = kcl.store_npy_local(arr)
    np.save(plain, arr)
    load_cases = {
        "np.load": lambda r: np.load(plain),
        "kf.load_npy(mmap_mode='r')": lambda r: fast.load_npy(uri, mmap_mode="r"),
        "kf.load_npy": lambda r: fast.load_npy(uri),
        "np.load(mmap_mode='r')": lambda r: np.load(plain, mmap_mode="r"),
        "kachery-cloud load_npy": lambda r: kcl.load_npy(kc_uri),
    }
    load_times = interleaved(load_cases, repeats)
    print_table(
        f"load a {size_mib} MiB array (page cache warm)",
        [(name, median(ts)) for name, ts in load_times.items()],
        "np.load",
    )


def bench_import() -> None:
    code = "import time; t=time.perf_counter(); import kachery_flows; print(time.perf_counter()-t)"
    samples = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(7)
    ]
    note(f"import kachery_flows: median {median(samples) * 1e3:.1f} ms (target < 150 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes-mib", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kf-bench-", dir=os.environ.get("BENCH_DIR")) as tmp:
        work = Path(tmp)
        os.environ["KACHERY_CLOUD_DIR"] = str(work / "kc")
        for size in args.sizes_mib:
            bench_size(size, args.repeats, work)
    bench_import()


if __name__ == "__main__":
    main()
