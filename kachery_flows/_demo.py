"""The ``kachery-flows demo`` walk-through: store and load each kind of object, then
memoize an analysis and hit its cache."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from .errors import KacheryError
from .store import Store

__all__ = ["band_power", "run_demo"]


def band_power(signal: Any, fs: float) -> Any:
    """Power of each channel in 1 Hz bins (the demo's cached analysis)."""
    import numpy as np

    spectrum = np.abs(np.fft.rfft(signal, axis=-1)) ** 2
    bins = np.fft.rfftfreq(signal.shape[-1], 1.0 / fs).astype(int)
    return np.stack([np.bincount(bins, weights=row) for row in spectrum])


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise KacheryError(f"demo: {what} did not load back as stored")


def run_demo(store: Store) -> dict[str, str]:
    """Store text, JSON, an array, a pickle and a file in ``store``, load each back, check
    it, then run a memoized analysis twice (computed, then from the cache). Prints the URIs
    and returns them by kind."""
    import numpy as np

    from .memoize import kachery_cached

    print(f"kachery-flows demo: store at {store.root}")
    array = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int16)
    uris = {
        "text": store.store_text("example text", "example.txt"),
        "json": store.store_json({"example": "dict", "pi": 3.14159}, "example.json"),
        "npy": store.store_npy(array, "example.npy"),
        "pkl": store.store_pkl({"example": array}, "example.pkl"),
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "notes.txt"
        path.write_text("a file stored by kachery-flows\n", encoding="utf-8")
        uris["file"] = store.store_file(path, "notes.txt")

    _check(store.load_text(uris["text"]) == "example text", "text")
    _check(store.load_json(uris["json"]) == {"example": "dict", "pi": 3.14159}, "json")
    _check(np.array_equal(store.load_npy(uris["npy"], mmap_mode="r"), array), "npy")
    _check(np.array_equal(store.load_pkl(uris["pkl"])["example"], array), "pkl")
    _check(
        Path(store.load_file(uris["file"])).read_bytes() == b"a file stored by kachery-flows\n",
        "file",
    )
    width = max(len(k) for k in uris)
    for kind, uri in uris.items():
        print(f"  {kind:<{width}}  {uri}")
    print("all objects loaded back and matched.")
    print("These URIs work with kachery-cloud too (same store layout):")
    print(
        f'  KACHERY_CLOUD_DIR={store.root} python -c "import kachery_cloud as kcl; '
        f"print(kcl.load_text('{uris['text']}'))\""
    )

    cached = kachery_cached(store=store)(band_power)
    recording = np.random.default_rng(0).standard_normal((16, 200_000)).astype(np.float32)
    print("\nmemoized analysis: band power of a 16-channel, 200k-sample recording")
    for attempt in ("first call", "second call"):
        hit = cached.is_cached(recording, 2000.0)
        start = time.perf_counter()
        power = cached(recording, 2000.0)
        elapsed = (time.perf_counter() - start) * 1e3
        how = "cache hit" if hit else "computed"
        if hit and attempt == "first call":
            how += ": computed by an earlier run"
        print(f"  {attempt:<11}  {elapsed:8.1f} ms  ({how})")
    _check(np.allclose(power, band_power(recording, 2000.0)), "memoized result")
    uris["memo"] = cached.ref(recording, 2000.0).uri
    record = cached.record(recording, 2000.0) or {}
    print(f"  result  {uris['memo']}")
    print(
        f"  key     {cached.key(recording, 2000.0)}  (kachery-flows info KEY shows its "
        f"provenance: {record.get('function')}, {record.get('duration')} s on "
        f"{record.get('host')})"
    )
    return uris
