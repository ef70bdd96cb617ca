from __future__ import annotations

import dataclasses
import enum
import os
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kachery_flows import Ref, UnhashableArgumentError
from kachery_flows.tokens import array_token, register_array_token, token_of

H = "ab" * 20


@dataclasses.dataclass
class Params:
    fs: float
    bands: tuple[int, ...]


class Color(enum.Enum):
    RED = 1
    BLUE = 2


Pair = namedtuple("Pair", "a b")


def test_arrays_views_and_copies_agree() -> None:
    a = np.arange(24.0).reshape(4, 6)
    assert token_of(a) == token_of(a.copy())
    assert token_of(a.T) == token_of(np.ascontiguousarray(a.T))
    assert token_of(a[:, ::2]) == token_of(a[:, ::2].copy())
    assert token_of(a[::-1]) == token_of(a[::-1].copy())
    assert token_of(np.asfortranarray(a)) == token_of(a)


def test_arrays_with_other_dtype_or_shape_differ() -> None:
    a = np.arange(12, dtype=np.int64)
    assert token_of(a) != token_of(a.astype(np.int32))
    assert token_of(a) != token_of(a.reshape(3, 4))
    assert token_of(a) != token_of(a.view(np.float64))
    assert token_of(a) != token_of(a.astype(">i8"))
    assert token_of(np.zeros(0)) != token_of(np.zeros((0, 3)))


def test_scalars_and_containers_keep_their_type() -> None:
    distinct = [
        1,
        1.0,
        True,
        "1",
        b"1",
        [1],
        (1,),
        {1},
        frozenset({1}),
        {1: 1},
        None,
        0.0,
        -0.0,
        np.int64(1),
        np.float32(1),
        1 + 0j,
        Path("1"),
        Color.RED,
        Pair(1, 1),
        (1, 1),
    ]
    tokens = [token_of(v) for v in distinct]
    assert len(set(tokens)) == len(tokens)


def test_sets_and_dicts_are_order_independent() -> None:
    assert token_of({"b", "a", "c"}) == token_of({"c", "a", "b"})
    assert token_of({"x": 1, "y": 2}) == token_of({"y": 2, "x": 1})
    assert token_of([1, 2]) != token_of([2, 1])


def test_refs_and_uri_strings_cost_only_their_hash() -> None:
    assert token_of(Ref(H, "a.npy")) == token_of(Ref(H, "b.npy"))
    assert token_of(f"sha1://{H}?label=x") == token_of(Ref(H))
    assert token_of(f"kachery:zone:sha1:{H}") == token_of(Ref(H))
    assert token_of(Ref(H)) != token_of(Ref("cd" * 20))
    assert token_of("sha1://not-a-hash") == token_of("sha1://not-a-hash")


def test_dataclasses_pandas_and_nesting() -> None:
    assert token_of(Params(1.0, (1, 2))) == token_of(Params(1.0, (1, 2)))
    assert token_of(Params(1.0, (1, 2))) != token_of(Params(1.0, (1, 3)))
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    assert token_of(df) == token_of(df.copy())
    assert token_of(df) != token_of(df.assign(b=["x", "y", "w"]))
    assert token_of(df) != token_of(df.rename(columns={"a": "c"}))
    assert token_of(df) != token_of(df.set_axis([5, 6, 7]))
    assert token_of(df["a"]) == token_of(df["a"].copy())
    nested = {"x": [np.arange(3), {"y": (1, Ref(H))}]}
    assert token_of(nested) == token_of({"x": [np.arange(3), {"y": (1, Ref(H))}]})


def test_unhashable_values_raise_with_advice() -> None:
    class Opaque:
        pass

    with pytest.raises(UnhashableArgumentError, match="ignore="):
        token_of(Opaque())
    with pytest.raises(UnhashableArgumentError):
        token_of([lambda: 1])
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(UnhashableArgumentError, match="refers to itself"):
        token_of(loop)


def test_custom_token_hook() -> None:
    class Model:
        def __init__(self, w: int) -> None:
            self.w = w

        def __kachery_token__(self) -> bytes:
            return str(self.w).encode()

    assert token_of(Model(1)) == token_of(Model(1))
    assert token_of(Model(1)) != token_of(Model(2))


def test_registered_read_only_array_is_not_rehashed() -> None:
    a = np.arange(10.0)
    a.flags.writeable = False
    register_array_token(a, array_token(np.arange(10.0)))
    assert token_of(a) == token_of(np.arange(10.0))
    register_array_token(a, array_token(np.arange(3)))  # proves the remembered frame is used
    assert token_of(a) == token_of(np.arange(3))
    writable = np.arange(10.0)
    register_array_token(writable, array_token(np.arange(3)))
    assert token_of(writable) == token_of(np.arange(10.0))


SCRIPT = """
import numpy as np, pandas as pd, sys
sys.path.insert(0, {tests!r})
from test_tokens import Params, Color
from kachery_flows import Ref
from kachery_flows.tokens import token_of
value = {{"a": np.arange(10.0)[::2], "s": {{"z", "y", "x"}}, "p": Params(2.0, (1, 2)),
         "c": Color.BLUE, "r": Ref({h!r}), "f": -0.0, "df": pd.DataFrame({{"k": ["u", "v"]}})}}
print(token_of(value).hex())
"""


def test_tokens_are_stable_across_processes_and_hash_seeds() -> None:
    script = SCRIPT.format(tests=str(Path(__file__).parent), h=H)
    outputs = set()
    for seed in ("0", "1", "12345", "random"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(out.stdout.strip())
    assert len(outputs) == 1
