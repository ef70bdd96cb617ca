"""The ``kachery-flows demo`` walk-through: store and load each kind of object."""

from __future__ import annotations

import tempfile
from pathlib import Path

from .store import Store

__all__ = ["run_demo"]


def run_demo(store: Store) -> dict[str, str]:
    """Store text, JSON, an array, a pickle and a file in ``store``, load each back,
    check it, and print the URIs. Returns the URIs by kind."""
    import numpy as np

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

    assert store.load_text(uris["text"]) == "example text"
    assert store.load_json(uris["json"]) == {"example": "dict", "pi": 3.14159}
    assert np.array_equal(store.load_npy(uris["npy"], mmap_mode="r"), array)
    assert np.array_equal(store.load_pkl(uris["pkl"])["example"], array)
    assert Path(store.load_file(uris["file"])).read_bytes() == b"a file stored by kachery-flows\n"

    width = max(len(k) for k in uris)
    for kind, uri in uris.items():
        print(f"  {kind:<{width}}  {uri}")
    print("all objects loaded back and matched.")
    print("These URIs work with kachery-cloud too (same store layout):")
    print(f"  KACHERY_CLOUD_DIR={store.root} python -c \"import kachery_cloud as kcl; "
          f"print(kcl.load_text('{uris['text']}'))\"")
    return uris
