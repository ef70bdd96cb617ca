"""Store and load each kind of object; run with ``python examples/quickstart.py``.

Uses the default store (``$KACHERY_CLOUD_DIR`` or ``~/.kachery-cloud``).
"""

from __future__ import annotations

import numpy as np

import kachery_flows as kf


def main() -> None:
    recording = np.random.default_rng(0).standard_normal((4, 30_000)).astype(np.float32)
    uri = kf.store_npy(recording, label="recording.npy")
    print("array :", uri)
    again = kf.load_npy(uri, mmap_mode="r")  # memory-mapped, read-only, no copy
    assert np.array_equal(again, recording)

    meta = {"sampling_rate_hz": 30000.0, "channels": 4, "recording": uri}
    meta_uri = kf.store_json(meta, label="meta.json")
    print("json  :", meta_uri)
    assert kf.load_json(meta_uri) == meta

    note_uri = kf.store_text("spikes were sorted with default settings\n", label="note.txt")
    print("text  :", note_uri)

    try:
        kf.load_text("sha1://" + "0" * 40)
    except kf.ObjectNotFoundError as exc:
        print("missing objects raise:", type(exc).__name__)


if __name__ == "__main__":
    main()
