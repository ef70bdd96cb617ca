"""A cached spectral analysis of a synthetic multichannel recording (numpy only).

Run ``python examples/memoize_analysis.py``: the pipeline runs once here (computing every
step), then again in a fresh Python process against the same store, where every step is a
cache hit (arrays come back memory-mapped). Timings are printed for both runs, with the
provenance record of the last step. The store is a temp dir, removed at the end, unless
you pass ``--store DIR`` (then ``kachery-flows --root DIR info KEY`` shows the records).

Steps: synthesize a recording (channels x samples) -> FFT band-pass filter -> Welch power
spectral density -> power per frequency band. Each step is ``@kachery_cached``, so the
second run only hashes its small arguments, and the array that flows between steps is
recognized by the token recorded when it was first computed (no re-hashing).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

from kachery_flows import kachery_cached

BANDS = {"theta": (4.0, 8.0), "alpha": (8.0, 13.0), "beta": (13.0, 30.0), "gamma": (30.0, 80.0)}


@kachery_cached(version="1")
def synthesize_recording(n_channels: int, seconds: float, fs: float, seed: int) -> Any:
    """Pink-ish noise plus a few oscillations per channel, float32 (channels x samples)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    t = np.arange(n) / fs
    spectrum = np.fft.rfft(rng.standard_normal((n_channels, n)), axis=1)
    freqs = np.fft.rfftfreq(n, 1 / fs)
    spectrum[:, 1:] /= np.sqrt(freqs[1:])
    signal = np.fft.irfft(spectrum, n=n, axis=1)
    for ch in range(n_channels):
        for f0 in rng.choice([6.0, 10.0, 20.0, 40.0], size=2, replace=False):
            signal[ch] += 0.5 * np.sin(2 * np.pi * f0 * t + rng.uniform(0, 2 * np.pi))
    return signal.astype(np.float32)


@kachery_cached
def bandpass(recording: Any, low: float, high: float, fs: float) -> Any:
    """Zero-phase band-pass by zeroing FFT bins outside [low, high] Hz."""
    n = recording.shape[1]
    spectrum = np.fft.rfft(recording, axis=1)
    freqs = np.fft.rfftfreq(n, 1 / fs)
    spectrum[:, (freqs < low) | (freqs > high)] = 0
    return np.fft.irfft(spectrum, n=n, axis=1).astype(np.float32)


@kachery_cached
def welch_psd(signal: Any, fs: float, nperseg: int = 2048) -> Any:
    """Welch power spectral density per channel (Hann window, 50% overlap)."""
    step = nperseg // 2
    window = np.hanning(nperseg).astype(np.float32)
    starts = range(0, signal.shape[1] - nperseg + 1, step)
    acc = np.zeros((signal.shape[0], nperseg // 2 + 1))
    for start in starts:
        segment = signal[:, start : start + nperseg]
        segment = (segment - segment.mean(axis=1, keepdims=True)) * window
        acc += np.abs(np.fft.rfft(segment, axis=1)) ** 2
    psd = acc / (len(starts) * fs * float((window**2).sum()))
    psd[:, 1:-1] *= 2
    return psd


@kachery_cached
def band_powers(
    psd: Any, fs: float, nperseg: int, bands: dict[str, tuple[float, float]]
) -> dict[str, Any]:
    """Mean power per band and channel (JSON: readable with any tool)."""
    freqs = np.fft.rfftfreq(nperseg, 1 / fs)
    return {
        name: psd[:, (freqs >= lo) & (freqs < hi)].mean(axis=1).round(8).tolist()
        for name, (lo, hi) in sorted(bands.items())
    }


def run_pipeline(label: str) -> None:
    fs, nperseg = 2000.0, 2048
    timings: list[tuple[str, float]] = []

    def timed(name: str, fn: Any, *args: Any) -> Any:
        start = time.perf_counter()
        result = fn(*args)
        timings.append((name, time.perf_counter() - start))
        return result

    recording = timed("synthesize 32 ch x 120 s", synthesize_recording, 32, 120.0, fs, 7)
    filtered = timed("band-pass 1-100 Hz", bandpass, recording, 1.0, 100.0, fs)
    psd = timed("Welch PSD", welch_psd, filtered, fs, nperseg)
    powers = timed("band powers", band_powers, psd, fs, nperseg, BANDS)
    print(f"{label}:")
    for name, seconds in timings:
        print(f"  {name:<26} {seconds * 1e3:9.2f} ms")
    print(f"  {'total':<26} {sum(s for _, s in timings) * 1e3:9.2f} ms")
    print(f"  recording: {type(recording).__name__}, {recording.nbytes / 1e6:.0f} MB")
    print(f"  alpha power, channel 0: {powers['alpha'][0]}")
    record = band_powers.record(psd, fs, nperseg, BANDS)
    assert record is not None
    print(f"  band powers: {record['result']['uri']}")
    print(f"  provenance record (kachery-flows info {record['key']}):")
    for name, item in record["inputs"].items():
        shown = item.get("value", item.get("shape", ""))
        print(f"    {name:<8} {item['type']:<14} {shown!s:<12} token {item['token'][:12]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", help="store root to keep (default: a temp dir, removed)")
    parser.add_argument("--second-run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    store = args.store or tempfile.mkdtemp(prefix="kachery-memoize-example-")
    os.environ["KACHERY_CLOUD_DIR"] = store
    os.environ.setdefault("KACHERY_FLOWS_FSYNC", "0")
    if args.second_run:
        run_pipeline("second run, fresh process (every step from the cache)")
        return
    try:
        run_pipeline(f"first run (store {store})")
        subprocess.run(
            [sys.executable, __file__, "--store", store, "--second-run"],
            check=True,
            env=os.environ,
        )
    finally:
        if not args.store:
            shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    main()
