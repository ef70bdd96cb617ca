"""Where did this result come from? A small spike-sorting style pipeline, then its lineage.

1. A synthetic recording (8 channels x 20,000 samples) is checkpointed with Dask's
   ``to_kachery`` (local scheduler): one URI names the chunked array.
2. ``@kachery_cached`` steps, each taking and returning URIs: every channel is extracted,
   band-pass filtered and thresholded (the same three steps eight times), then a summary
   counts the spikes.
3. ``kf.lineage(uri)`` walks back from the summary's URI alone: functions, code
   fingerprints, inputs, durations, hosts, times. The tree is printed as
   ``kachery-flows lineage URI`` prints it, and ``lineage.html`` (in the current
   directory) draws the graph: open it in a browser, click a box for its record.

Run it with ``python examples/lineage_pipeline.py``; it uses the default store
(``$KACHERY_CLOUD_DIR``, else ``~/.kachery-cloud``). Run it twice: the second run computes
nothing, and the lineage is the same.
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np

import kachery_flows as kf
from kachery_flows import Ref, kachery_cached
from kachery_flows.cli import main
from kachery_flows.dask import from_kachery, to_kachery

N_CHANNELS = 8
N_SAMPLES = 20_000
FS = 30_000.0


@kachery_cached(return_ref=True)
def channel(recording: Ref, index: int) -> Any:
    """One channel of the checkpointed recording."""
    return np.asarray(from_kachery(recording)[index].compute())


@kachery_cached(return_ref=True)
def bandpass(trace: Ref, low: float = 300.0, high: float = 6000.0) -> Any:
    """Keep the frequencies between ``low`` and ``high`` Hz (FFT mask)."""
    x = trace.load()
    spectrum = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(x.size, 1 / FS)
    spectrum[(freqs < low) | (freqs > high)] = 0
    return np.fft.irfft(spectrum, n=x.size).astype(np.float32)


@kachery_cached(return_ref=True)
def detect(filtered: Ref, threshold: float = 4.5) -> Any:
    """Sample indices where the trace dips below ``-threshold`` robust standard deviations."""
    x = filtered.load()
    noise = np.median(np.abs(x)) / 0.6745
    below = x < -threshold * noise
    return np.flatnonzero(below[1:] & ~below[:-1]).astype(np.int64)


@kachery_cached
def summary(spikes: list[Ref]) -> dict[str, Any]:
    """Spike counts per channel."""
    counts = [int(s.load().size) for s in spikes]
    return {"channels": len(counts), "counts": counts, "total": sum(counts)}


def main_pipeline() -> str:
    rng = np.random.default_rng(0)
    data = rng.standard_normal((N_CHANNELS, N_SAMPLES)).astype(np.float32)
    data[:, rng.integers(0, N_SAMPLES, 40)] -= 12.0  # spikes
    recording = to_kachery(da.from_array(data, chunks=(4, N_SAMPLES)), label="recording")
    spikes = [detect.ref(bandpass.ref(channel.ref(recording, i))) for i in range(N_CHANNELS)]
    result = summary.ref(spikes)
    print(f"summary: {result.load()}")
    return result.uri


if __name__ == "__main__":
    uri = main_pipeline()
    graph = kf.lineage(uri)
    print(f"lineage of {uri}: {len(graph.nodes)} objects, complete: {graph.complete}\n")
    main(["lineage", uri, "--depth", "3"])
    main(["lineage", uri, "--html", "lineage.html"])
