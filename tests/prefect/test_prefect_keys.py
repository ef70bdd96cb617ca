"""KacheryInputs keys, computed offline (no Prefect server): identity, content, stability."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prefect import task
from prefect.cache_policies import TASK_SOURCE, CompoundCachePolicy
from prefect_tasks import cube, make_signal, make_signal_ref, square

from kachery_flows import Ref, UnhashableArgumentError
from kachery_flows.prefect import KACHERY_DEFAULT, KacheryInputs, kachery_task

HERE = Path(__file__).parent
POLICY = KacheryInputs()
H1 = "a" * 40


def test_two_tasks_with_equal_inputs_get_different_keys() -> None:
    inputs = {"x": 3.0}
    assert POLICY.key_for(square, inputs) != POLICY.key_for(cube, inputs)


def test_key_is_40_hex_and_depends_on_every_input() -> None:
    key = POLICY.key_for(make_signal, {"n": 10, "seed": 1})
    assert len(key) == 40 and all(c in "0123456789abcdef" for c in key)
    assert key == POLICY.key_for(make_signal, {"seed": 1, "n": 10})
    assert key != POLICY.key_for(make_signal, {"n": 10, "seed": 2})
    assert key != POLICY.key_for(make_signal, {"n": 10.0, "seed": 1})  # type is content
    assert key != POLICY.key_for(make_signal, {"m": 10, "seed": 1})  # names too


def test_strided_views_and_copies_agree() -> None:
    a = np.arange(200_000, dtype=np.float64).reshape(400, 500)
    view = a[::2, 1::3]
    assert not view.flags.c_contiguous
    assert POLICY.key_for(square, {"x": view}) == POLICY.key_for(square, {"x": view.copy()})
    assert POLICY.key_for(square, {"x": view}) != POLICY.key_for(square, {"x": a[1::2, 1::3]})
    assert POLICY.key_for(square, {"x": a}) != POLICY.key_for(square, {"x": a.astype("f4")})


def test_ref_labels_do_not_change_keys() -> None:
    keys = {
        POLICY.key_for(square, {"x": v})
        for v in (Ref(H1), Ref(H1, "a.npy"), f"sha1://{H1}?label=b.json", f"kachery:z:sha1:{H1}")
    }
    assert len(keys) == 1
    assert keys != {POLICY.key_for(square, {"x": Ref("b" * 40, "a.npy")})}


def test_a_large_array_is_keyed_in_place_without_pickling() -> None:
    big = np.ones(8 << 20)  # 64 MiB
    tracemalloc.start()
    try:
        POLICY.key_for(square, {"x": big})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"keying a 64 MiB array allocated {peak} bytes"


def test_exclude_version_and_subtraction() -> None:
    a = POLICY.key_for(square, {"x": 2.0, "verbose": True})
    b = POLICY.key_for(square, {"x": 2.0, "verbose": False})
    assert a != b
    quiet = KacheryInputs(exclude=["verbose"])
    assert quiet.key_for(square, {"x": 2.0, "verbose": True}) == quiet.key_for(
        square, {"x": 2.0, "verbose": False}
    )
    assert quiet == (POLICY - "verbose") and POLICY.exclude == []
    v3 = KacheryInputs(version="3")
    assert v3.key_for(square, {"x": 2.0}) != POLICY.key_for(square, {"x": 2.0})
    # the task's own version= is used when the policy has none
    versioned = kachery_task(version="3")(square.fn)
    assert POLICY.key_for(versioned, {"x": 2.0}) == v3.key_for(square, {"x": 2.0})


def test_unhashable_input_raises_a_clear_error() -> None:
    with pytest.raises(UnhashableArgumentError, match=r"input 'x' of task .*square.*exclude"):
        POLICY.key_for(square, {"x": object()})
    assert KacheryInputs(exclude=["x"]).key_for(square, {"x": object()})


def test_ref_returning_tasks_do_not_share_keys_with_value_returning_ones() -> None:
    inputs = {"n": 10, "seed": 1}
    plain = kachery_task(make_signal_ref.fn.__wrapped__)
    assert plain.fn is make_signal_ref.fn.__wrapped__
    assert POLICY.key_for(plain, inputs) != POLICY.key_for(make_signal_ref, inputs)


def test_policy_composes_with_prefect_policies() -> None:
    assert POLICY.compute_key(None, {"x": 1}, {}) is None  # type: ignore[arg-type]
    assert isinstance(KACHERY_DEFAULT, CompoundCachePolicy)
    assert any(isinstance(p, KacheryInputs) for p in KACHERY_DEFAULT.policies)
    assert TASK_SOURCE in KACHERY_DEFAULT.policies
    configured = KACHERY_DEFAULT.configure(isolation_level="SERIALIZABLE")
    assert configured.isolation_level == "SERIALIZABLE" and KACHERY_DEFAULT.isolation_level is None
    assert [type(p) for p in configured.policies] == [type(p) for p in KACHERY_DEFAULT.policies]


def test_kachery_task_defaults_and_passthrough() -> None:
    @kachery_task(retries=2, name="renamed", tags={"x"})
    def f(x: int) -> int:
        return x

    assert f.retries == 2 and f.name == "renamed" and f.tags == {"x"}
    assert f.persist_result is True and f.result_serializer.type == "kachery"
    assert f.cache_policy is KACHERY_DEFAULT
    versioned = kachery_task(version="3")(f.fn)
    assert versioned.version == "3" and isinstance(versioned.cache_policy, KacheryInputs)
    assert f.fn(4) == 4 and kachery_task(f.fn).fn is f.fn
    with pytest.raises(TypeError, match="generator"):
        kachery_task(return_ref=True)(lambda: (yield 1))
    bare = task(persist_result=True, cache_policy=POLICY)(f.fn)
    assert POLICY.key_for(bare, {"x": 1}) == POLICY.key_for(f, {"x": 1})


KEY_SCRIPT = """
import json, sys
import numpy as np
from kachery_flows import Ref
from kachery_flows.prefect import KacheryInputs
from prefect_tasks import square
inputs = {
    "s": {"alpha", "beta", "gamma", "delta", "epsilon"},
    "f": frozenset({3.5, "x", (1, 2)}),
    "d": {"b": [1, 2.5, None], "a": (True, b"raw")},
    "a": np.arange(1000, dtype=np.int32)[::3],
    "r": Ref("a" * 40, "label.npy"),
}
print(json.dumps(KacheryInputs().key_for(square, inputs)))
"""


def test_keys_are_stable_across_processes_and_hash_seeds() -> None:
    path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", KEY_SCRIPT],
            env=dict(env, PYTHONHASHSEED=seed),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in ("1", "2", "3")
    ]
    keys = set()
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        keys.add(json.loads(out.strip().splitlines()[-1]))
    assert len(keys) == 1


def test_keys_stay_byte_identical_across_releases() -> None:
    """Known keys: a change of the key framing would orphan every existing cached result."""

    def scale(x: Any, factor: float = 2.0, verbose: bool = False) -> Any:
        return x

    scale.__module__, scale.__qualname__ = "pinned.tasks", "scale"
    inputs = {"x": np.arange(4.0), "factor": 2.0, "verbose": True}
    assert KacheryInputs(exclude=["verbose"]).key_for(task(scale), inputs) == PINNED_KEY
    versioned = task(version="3")(scale)
    assert (KacheryInputs() - "verbose").key_for(versioned, inputs) == PINNED_VERSION_KEY
    assert KacheryInputs(version="4").key_for(versioned, {"x": "a"}) == PINNED_POLICY_KEY


PINNED_KEY = "55a8e81634f8d5b4459b925fdc9502ccd6fcaf12"
PINNED_VERSION_KEY = "0411d382774f26d9792321b0ce7acc9298307b9e"
PINNED_POLICY_KEY = "03e9b7509793d1a4ee2c22804a3020b17b7d76d5"
