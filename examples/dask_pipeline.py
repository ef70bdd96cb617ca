"""A chunked analysis on a Dask cluster that checkpoints its intermediate array in kachery.

1. A synthetic multichannel recording (32 channels x 1,000,000 samples of float32, 128 MB,
   with a slow drift and sparse negative spikes) is generated lazily, 4 channels per chunk.
2. Every channel is high-pass filtered (its moving average subtracted), chunk by chunk on
   the workers.
3. The filtered array is checkpointed with ``to_kachery``: each worker stores the chunks it
   computed; one URI names the whole array.
4. A reduction (per-channel noise level and spike count) is computed from the checkpoint.
5. A second client reloads the array from the URI alone and gets the same answer.

Run it with ``python examples/dask_pipeline.py``; it uses the default store
(``$KACHERY_CLOUD_DIR``, else ``~/.kachery-cloud``).
"""

from __future__ import annotations

import time
from typing import Any

import dask.array as da
import numpy as np
from distributed import Client, LocalCluster

from kachery_flows.dask import KacheryPlugin, from_kachery, to_kachery

N_CHANNELS = 32
N_SAMPLES = 1_000_000
CHANNELS_PER_CHUNK = 4
FS = 30_000.0  # samples per second
WIDTH = 301  # moving-average window of the high-pass filter, in samples


def make_block(block_id: Any = None) -> np.ndarray:
    """One chunk of the recording: noise, a slow drift and sparse spikes (seeded per chunk)."""
    first = block_id[0] * CHANNELS_PER_CHUNK
    rng = np.random.default_rng(first)
    t = np.arange(N_SAMPLES) / FS
    noise = rng.standard_normal((CHANNELS_PER_CHUNK, N_SAMPLES), dtype=np.float32)
    drift = 20 * np.sin(2 * np.pi * 0.5 * t + np.arange(CHANNELS_PER_CHUNK)[:, None])
    spikes = np.zeros_like(noise)
    for ch in range(CHANNELS_PER_CHUNK):
        times = rng.choice(N_SAMPLES, size=50 + 10 * (first + ch), replace=False)
        spikes[ch, times] = -12.0
    return (noise + drift + spikes).astype(np.float32)


def highpass(block: np.ndarray) -> np.ndarray:
    """Subtract a centred moving average of WIDTH samples from every channel."""
    padded = np.pad(block.astype(np.float64), ((0, 0), (WIDTH // 2, WIDTH // 2)), mode="edge")
    cumsum = np.cumsum(padded, axis=1)
    cumsum = np.concatenate([np.zeros((block.shape[0], 1)), cumsum], axis=1)
    smooth = (cumsum[:, WIDTH:] - cumsum[:, :-WIDTH]) / WIDTH
    return (block - smooth).astype(np.float32)


def summarize(filtered: da.Array) -> tuple[da.Array, da.Array]:
    """Per channel: robust noise level (median absolute value / 0.6745) and spike count."""
    noise = da.map_blocks(
        lambda b: np.median(np.abs(b), axis=1, keepdims=True) / 0.6745,
        filtered,
        chunks=(CHANNELS_PER_CHUNK, 1),
        dtype=np.float32,
    )
    spikes = (filtered < -6 * noise).sum(axis=1)
    return noise[:, 0], spikes


def main() -> None:
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
        client.register_plugin(KacheryPlugin())  # every worker uses this process's store
        recording = da.map_blocks(
            make_block,
            chunks=((CHANNELS_PER_CHUNK,) * (N_CHANNELS // CHANNELS_PER_CHUNK), (N_SAMPLES,)),
            dtype=np.float32,
        )
        filtered = recording.map_blocks(highpass, dtype=np.float32)

        t0 = time.perf_counter()
        ref = to_kachery(filtered, label="filtered-recording")
        print(
            f"checkpointed {filtered.nbytes / 1e6:.0f} MB in {filtered.npartitions} chunks "
            f"({time.perf_counter() - t0:.1f} s)"
        )
        print(f"filtered recording: {ref.uri}")

        noise, spikes = client.gather(client.compute(summarize(from_kachery(ref))))
        print("noise level per channel: " + ", ".join(f"{v:.3f}" for v in noise[:4]) + " ...")
        print(f"spikes per channel:      {spikes[:4]} ... (expected {[50, 60, 70, 80]} ...)")

        # A second client needs nothing but the URI: the graph has the same name, the
        # chunks are memory-mapped by the workers from the store.
        with Client(cluster.scheduler_address, set_as_default=False) as second:
            again = from_kachery(ref.uri)
            noise2, spikes2 = second.gather(second.compute(summarize(again)))
        assert np.array_equal(noise, noise2) and np.array_equal(spikes, spikes2)
        print(f"second client: same result from {again.name}")


if __name__ == "__main__":
    main()
