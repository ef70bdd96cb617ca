"""Cached functions travel: by reference from modules, by value from ``__main__``, and run
in multiprocessing pools and Dask worker processes with one shared cache."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import cloudpickle
import memo_funcs
import numpy as np
import pytest
from memo_helpers import run_python


def test_module_functions_pickle_by_reference() -> None:
    for dumps in (pickle.dumps, cloudpickle.dumps):
        data = dumps(memo_funcs.slow_square)
        assert len(data) < 200 and b"memo_funcs" in data
        assert pickle.loads(data) is memo_funcs.slow_square
    raw = memo_funcs.slow_square.__wrapped__
    assert pickle.loads(pickle.dumps(raw)) is raw


MAIN_SCRIPT = """
import json, sys
import cloudpickle
from kachery_flows import kachery_cached


@kachery_cached
def spectrum(x, n=3):
    with open(sys.argv[2], "a") as f:
        f.write("run\\n")
    return [x * i for i in range(n)]


if __name__ == "__main__":
    print(json.dumps({"key": spectrum.key(2.0), "value": spectrum(2.0),
                      "identity": spectrum.identity, "code": spectrum.code}))
    with open(sys.argv[1], "wb") as f:
        cloudpickle.dump(spectrum, f)
"""

LOAD_SCRIPT = """
import json, pickle, sys
f = pickle.load(open(sys.argv[1], "rb"))
print(json.dumps({"key": f.key(2.0), "cached": f.is_cached(2.0), "value": f(2.0),
                  "identity": f.identity, "code": f.code, "other": f(3.0, n=2)}))
"""


def test_main_functions_travel_by_value_and_keep_their_key(tmp_path: Path) -> None:
    script = tmp_path / "analysis.py"
    script.write_text(MAIN_SCRIPT)
    pickled, marker = tmp_path / "spectrum.pkl", tmp_path / "runs.txt"
    store = str(tmp_path / "store")
    first = json.loads(
        run_python(
            [str(script), str(pickled), str(marker)], KACHERY_CLOUD_DIR=store, PYTHONHASHSEED="1"
        )
    )
    assert first["identity"] == "__main__.spectrum" and first["value"] == [0.0, 2.0, 4.0]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script.unlink()  # the source is gone: the code fingerprint travels with the function
    second = json.loads(
        run_python(
            ["-c", LOAD_SCRIPT, str(pickled), str(marker)],
            cwd=elsewhere,
            KACHERY_CLOUD_DIR=store,
            PYTHONHASHSEED="2",
        )
    )
    assert second["key"] == first["key"] and second["code"] == first["code"]
    assert second["cached"] is True and second["value"] == first["value"]
    assert second["other"] == [0.0, 3.0]
    assert marker.read_text().split() == ["run", "run"]  # 2.0 once (first process), 3.0 once


POOL_SCRIPT = """
import json, multiprocessing, sys
from kachery_flows import kachery_cached


@kachery_cached
def double(x):
    with open(sys.argv[1], "a") as f:
        f.write("run\\n")
    return 2 * x


if __name__ == "__main__":
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        first = pool.map(double, [1, 2, 3])
        again = pool.map(double, [3, 2, 1])
    print(json.dumps([first, again, double.is_cached(2)]))
"""


def test_main_functions_run_in_a_spawn_pool(tmp_path: Path) -> None:
    script = tmp_path / "pool.py"
    script.write_text(POOL_SCRIPT)
    marker = tmp_path / "runs.txt"
    out = run_python([str(script), str(marker)], KACHERY_CLOUD_DIR=str(tmp_path / "store"))
    assert json.loads(out) == [[2, 4, 6], [6, 4, 2], True]
    assert len(marker.read_text().split()) == 3


@pytest.mark.integration
def test_dask_worker_processes_share_one_cache(marker: str) -> None:
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            host="127.0.0.1",
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        futures = [
            client.submit(memo_funcs.make_signal, 20_000, 9, marker, pure=False) for _ in range(4)
        ]
        arrays = client.gather(futures)
        refs = client.gather(
            [client.submit(memo_funcs.signal_ref, 20_000, 9, marker, pure=False) for _ in range(2)]
        )
        totals = client.gather(
            [client.submit(memo_funcs.total_of_ref, ref, marker, pure=False) for ref in refs]
        )
        workers = {w for w in client.run(lambda: None)}
    assert len(workers) == 2
    expected = np.random.default_rng(9).standard_normal(20_000)
    assert all(np.array_equal(a, expected) for a in arrays)
    assert refs[0] == refs[1] and totals[0] == totals[1] == pytest.approx(expected.sum())
    assert memo_funcs.count(marker) == 3  # make_signal, signal_ref, total_of_ref: once each
    local = memo_funcs.make_signal(20_000, 9, marker)
    assert isinstance(local, np.memmap) and memo_funcs.count(marker) == 3
