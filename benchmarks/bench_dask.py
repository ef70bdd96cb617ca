"""kachery_flows.dask against what Dask users do otherwise, side by side in one run on a
2-worker LocalCluster (worker processes, 1 thread each).

1. Moving a 100 MB array from a producer task on one worker to a consumer on the other:
   by value (Dask's transfer) vs by Ref (the producer stores it, the consumer memory-maps
   it from the shared store). Timed from submitting the consumer to its result, the
   producer having finished (as in reference 2.6), and end to end (producer included).
2. Checkpointing a 1 GiB dask array already in worker memory: ``to_kachery`` vs
   ``da.to_npy_stack`` vs ``np.save(arr.compute())`` (``to_zarr`` too if zarr is
   installed), and vs ``np.save`` + SHA-1 of each chunk file on the workers (what a
   content address costs by hand). Outputs are deleted (and ``os.sync()`` run) between
   cases, untimed.
3. A 10-task ``dask.delayed`` pipeline: plain functions vs the same functions under
   ``@kachery_cached(return_ref=True)``, first run and re-run.

Run: ``python benchmarks/bench_dask.py [--mb 100] [--gib 1] [--repeats 5]
[--transfer-repeats 9]``
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
from _common import interleaved, median, note, print_table
from dask.base import compute
from dask.delayed import delayed
from distributed import Client, LocalCluster, wait

from kachery_flows import Ref, Store, get_default_store, kachery_cached
from kachery_flows.dask import KacheryPlugin, load_refs, to_kachery


def produce_value(n: int, seed: int) -> Any:
    out = np.empty(n)
    out.fill(float(seed))
    return out


def produce_ref(n: int, seed: int) -> Ref:
    return get_default_store().put_npy(produce_value(n, seed))


@load_refs
def consume(x: Any) -> float:
    return float(np.sum(x))  # reads every byte, whether it arrived or is memory-mapped


def save_and_hash(block: Any, path: str) -> str:
    """What content addressing costs by hand: np.save, then SHA-1 of the file."""
    np.save(path, block)
    h = hashlib.sha1()
    with open(path, "rb") as f:
        while data := f.read(8 << 20):
            h.update(data)
    return h.hexdigest()


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def bench_transfer(client: Client, workers: list[str], mb: float, repeats: int) -> None:
    producer, consumer = workers
    n = int(mb * 1e6 // 8)
    ready: dict[tuple[str, int], Any] = {}

    def produce(r: int) -> None:
        if ("value", r) in ready:
            return
        ready.clear()  # release the previous round's arrays
        for kind, fn in (("value", produce_value), ("ref", produce_ref)):
            ready[kind, r] = client.submit(fn, n, r, workers=[producer], pure=False)
        wait(list(ready.values()))

    def moved_by(kind: str) -> Any:
        def run(r: int) -> None:
            client.submit(consume, ready[kind, r], workers=[consumer], pure=False).result()

        return run

    def prepare(r: int) -> None:
        produce(r)
        os.sync()

    # warm up both paths (imports, connections, the store's directories)
    produce(-1)
    for kind in ("value", "ref"):
        moved_by(kind)(-1)
    ready.clear()
    times = interleaved(
        {"by value": moved_by("value"), "by Ref": moved_by("ref")}, repeats, setup=prepare
    )
    print_table(
        f"{mb:g} MB array, producer on one worker, consumer on the other "
        "(consumer submit -> result)",
        [(name, median(t)) for name, t in times.items()],
        "by value",
    )

    def end_to_end(kind: str) -> Any:
        fn = produce_value if kind == "value" else produce_ref

        def run(r: int) -> None:
            made = client.submit(fn, n, 10_000 + r, workers=[producer], pure=False)
            client.submit(consume, made, workers=[consumer], pure=False).result()

        return run

    def flush(r: int) -> None:
        os.sync()  # nobody pays for the previous case's dirty pages

    times = interleaved(
        {"by value": end_to_end("value"), "by Ref": end_to_end("ref")}, repeats, setup=flush
    )
    print_table(
        f"{mb:g} MB array, end to end (producer + move + consumer)",
        [(name, median(t)) for name, t in times.items()],
        "by value",
    )
    sizes = {}
    for kind, fn in (("value", produce_value), ("ref", produce_ref)):
        made = client.submit(fn, n, 20_000, workers=[producer], pure=False)
        wait(made)
        sizes[kind] = client.run_on_scheduler(
            lambda dask_scheduler, key: dask_scheduler.tasks[key].nbytes, key=made.key
        )
        del made
    note(
        f"{mb:g} MB array: result size the scheduler records: by value "
        f"{_fmt_bytes(sizes['value'])}, by Ref {_fmt_bytes(sizes['ref'])}"
    )


def bench_checkpoint(client: Client, gib: float, repeats: int, work: Path, root: Path) -> None:
    n = int(gib * 2**30 // 8)
    arr = da.random.default_rng(0).standard_normal(n, chunks=n // 16).persist()
    wait(arr)
    stack, single, zarr_dir = work / "npy-stack", work / "single.npy", work / "zarr"
    durable = root.parent / "durable"

    def reset(r: int) -> None:
        for path in (root, durable, stack, zarr_dir):
            shutil.rmtree(path, ignore_errors=True)
        single.unlink(missing_ok=True)
        os.sync()

    def kachery(r: int) -> None:
        to_kachery(arr)

    def kachery_fsync(r: int) -> None:
        to_kachery(arr, store=Store(durable, fsync=True))

    def npy_stack(r: int) -> None:
        da.to_npy_stack(str(stack), arr)

    def np_save(r: int) -> None:
        np.save(single, arr.compute())

    def npy_and_sha1(r: int) -> None:
        stack.mkdir(parents=True, exist_ok=True)
        blocks = arr.to_delayed().ravel()
        compute(*[delayed(save_and_hash)(b, str(stack / f"{i}.npy")) for i, b in enumerate(blocks)])

    cases = {
        "np.save(arr.compute())": np_save,
        "da.to_npy_stack": npy_stack,
        "np.save + sha1 per chunk, on the workers": npy_and_sha1,
        "to_kachery": kachery,
        "to_kachery, fsync on": kachery_fsync,
    }
    if importlib.util.find_spec("zarr") is not None:
        cases["da.to_zarr"] = lambda r: arr.to_zarr(str(zarr_dir))
    times = interleaved(cases, repeats, setup=reset)
    reset(0)
    print_table(
        f"checkpoint a {gib:g} GiB dask array held by the workers (16 chunks; "
        "fsync off unless said)",
        [(name, median(t)) for name, t in times.items()],
        "np.save(arr.compute())",
    )
    if "da.to_zarr" not in cases:
        note("zarr is not installed: da.to_zarr not measured")


def _filter(x: Any, width: int) -> Any:
    c = np.cumsum(x, axis=1)
    smooth = np.empty_like(x)
    smooth[:, width:] = (c[:, width:] - c[:, :-width]) / width
    smooth[:, :width] = x[:, :width]
    return x - smooth


def make(seed: int) -> Any:
    return np.random.default_rng(seed).standard_normal((8, 400_000))


def highpass(x: Any, width: int) -> Any:
    return _filter(np.asarray(x), width)


def rms(x: Any) -> Any:
    return np.sqrt(np.mean(np.square(x), axis=1))


def total(parts: list[Any]) -> float:
    return float(sum(np.sum(p) for p in parts))


cached_make = kachery_cached(return_ref=True)(make)
cached_highpass = kachery_cached(return_ref=True)(load_refs(highpass))
cached_rms = kachery_cached(return_ref=True)(load_refs(rms))
cached_total = kachery_cached(load_refs(total))


def _pipeline(seed: int, cached: bool) -> Any:
    mk, hp, rm, tot = (
        (cached_make, cached_highpass, cached_rms, cached_total)
        if cached
        else (make, highpass, rms, total)
    )
    rec = dask.delayed(mk, pure=True)(seed)  # 1
    parts = [
        dask.delayed(rm, pure=True)(dask.delayed(hp, pure=True)(rec, w))  # 4 + 4
        for w in (11, 51, 101, 301)
    ]
    return dask.delayed(tot, pure=True)(parts)  # 1


def bench_pipeline(repeats: int) -> None:
    def plain(r: int) -> None:
        _pipeline(r, cached=False).compute()

    def first(r: int) -> None:
        _pipeline(1000 + r, cached=True).compute()

    def rerun(r: int) -> None:
        _pipeline(1000 + r, cached=True).compute()

    plain(500)  # warm-up
    first(500)
    times = interleaved(
        {
            "plain dask.delayed": plain,
            "kachery_cached, first run": first,
            "kachery_cached, re-run": rerun,
        },
        repeats,
    )
    print_table(
        "10-task dask.delayed pipeline (8 x 400k float64 recording, 4 filters, 4 RMS, total)",
        [(name, median(t)) for name, t in times.items()],
        "plain dask.delayed",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=float, default=100.0, help="array moved between workers")
    parser.add_argument("--gib", type=float, default=1.0, help="dask array checkpointed")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--transfer-repeats",
        type=int,
        default=9,
        help="rounds of the (cheap, noisy) transfer cases",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-dask-"))
    root = work / "kachery"
    os.environ["KACHERY_CLOUD_DIR"] = str(root)
    os.environ["KACHERY_FLOWS_FSYNC"] = "0"  # like np.save and to_npy_stack
    os.environ.pop("KACHERY_ZONE", None)
    try:
        with (
            LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                host="127.0.0.1",
            ) as cluster,
            Client(cluster) as client,
        ):
            client.register_plugin(KacheryPlugin(root, fsync=False))
            workers = sorted(client.scheduler_info()["workers"])
            print(f"dask {dask.__version__}, 2 worker processes x 1 thread, store {root}")
            bench_transfer(client, workers, args.mb, args.transfer_repeats)
            bench_pipeline(args.repeats)
            bench_checkpoint(client, args.gib, max(3, args.repeats // 2), work, root)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
