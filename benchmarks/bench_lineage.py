"""The lineage reverse index (result hash -> producing record): lookup time at 100 and at
100,000 entries, against scanning the index (what a lookup without it would do).

The index is one ref-map name per result (``lineage/<sha1>``), here the store's local ref
map; fsync is off. Lookups pick existing entries at random, from the small index, from the
same number of entries of the large one (what the index costs, the caches being equally
warm), and from all of the large one (CPU and page caches then miss more: that part grows
with the working set, not with the index); each figure is the median of interleaved
rounds (``_common.per_call``). The scan is timed once per size.

    python benchmarks/bench_lineage.py                 # 100 and 100,000 entries
    python benchmarks/bench_lineage.py --large 20000   # quicker
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import note, per_call, print_comparison, print_table


def _fill(store: Any, refs: Any, count: int, rng: random.Random) -> list[str]:
    from kachery_flows._lineage_index import note_producer

    results = [f"{rng.getrandbits(160):040x}" for _ in range(count)]
    t0 = time.perf_counter()
    for sha1 in results:
        note_producer(store, refs, sha1, f"{rng.getrandbits(160):040x}")
    note(
        f"writing {count:,} index entries: {(time.perf_counter() - t0) / count * 1e6:.1f} µs "
        "per entry (local ref map, fsync off)"
    )
    return results


def _scan(folder: Path, wanted: str) -> str | None:
    """A lookup without the index: read entries until one names ``wanted``."""
    for entry in os.scandir(folder):
        if entry.name == wanted:
            return Path(entry.path).read_text()
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=100, help="entries (default 100)")
    parser.add_argument("--large", type=int, default=100_000, help="entries (default 100000)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    from kachery_flows import Store
    from kachery_flows._lineage_index import INDEX_PREFIX, lookup
    from kachery_flows.action_cache import action_cache

    scratch = Path(tempfile.mkdtemp(prefix="bench-lineage-"))
    rng = random.Random(0)
    try:
        maps: dict[int, tuple[Any, list[str], Path]] = {}
        for count in (args.small, args.large):
            store = Store(scratch / f"store-{count}", fsync=False)
            refs = action_cache(store).refs
            folder = store.root / ".kachery-flows" / "refs" / INDEX_PREFIX
            maps[count] = (refs, _fill(store, refs, count, rng), folder)

        def looker(count: int, keys: list[str]) -> Any:
            refs = maps[count][0]
            picks = iter(rng.choice(keys) for _ in range(10**7))
            return lambda: lookup(refs, next(picks))

        small_label = f"{args.small:,} entries"
        large_label = f"{args.large:,} entries"
        hot = rng.sample(maps[args.large][1], args.small)
        cases = {
            small_label: looker(args.small, maps[args.small][1]),
            f"{large_label}, {args.small} of them": looker(args.large, hot),
            f"{large_label}, any of them": looker(args.large, maps[args.large][1]),
        }
        times = per_call(cases, args.repeats, number=200)
        print_table(
            "Reverse index lookup (one result -> its record), interleaved",
            list(times.items()),
            small_label,
        )
        rows: list[dict[str, Any]] = []
        for count, label in ((args.small, small_label), (args.large, large_label)):
            _, results, folder = maps[count]
            target = rng.choice(results)
            t0 = time.perf_counter()
            assert _scan(folder, target) is not None
            rows.append(
                {
                    "what": f"lookup at {label}",
                    "ours": times[label if count == args.small else f"{large_label}, any of them"],
                    "anchor": time.perf_counter() - t0,
                    "anchor_name": "scan of the index",
                    "target": "O(1): flat from 100 to 100,000",
                }
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print_comparison("Lineage reverse index against a scan", rows)


if __name__ == "__main__":
    main()
