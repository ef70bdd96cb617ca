"""Memo keys: canonical, process-independent, sensitive to code and arguments only."""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import memo_funcs
import numpy as np
import pytest
from memo_helpers import run_python

from kachery_flows import Ref, Store, UnhashableArgumentError, kachery_cached
from kachery_flows._funcid import closure_fingerprint

H = "ab" * 20


def test_positional_keyword_and_default_spellings_agree() -> None:
    @kachery_cached
    def f(x: int, y: float = 2.0, *, z: str = "a") -> Any:
        return None

    key = f.key(1)
    assert f.key(1, 2.0) == key
    assert f.key(x=1, y=2.0, z="a") == key
    assert f.key(y=2.0, x=1) == key
    assert f.key(1, z="a") == key
    assert f.key(1, 3.0) != key
    assert f.key(1, z="b") != key
    assert f.key(1.0) != key  # 1 and 1.0 are different arguments
    assert len(key) == 40 and int(key, 16) >= 0


def test_var_args_and_positional_only_bind_like_a_call() -> None:
    @kachery_cached
    def f(a: int, /, *rest: int, **options: int) -> Any:
        return None

    assert f.key(1, 2, 3, k=4) == f.key(1, 2, 3, k=4)
    assert f.key(1, 2, 3) != f.key(1, 3, 2)
    assert f.key(1, u=1, v=2) == f.key(1, v=2, u=1)
    with pytest.raises(TypeError):
        f.key(a=1)  # positional-only, as in a real call
    with pytest.raises(TypeError):
        f.key()


def test_bad_calls_raise_the_calls_type_error() -> None:
    @kachery_cached
    def f(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="missing"):
        f.key()
    with pytest.raises(TypeError):
        f.key(1, 2)
    with pytest.raises(TypeError, match="unexpected"):
        f.key(1, y=2)


def test_ignored_arguments_do_not_change_the_key() -> None:
    @kachery_cached(ignore=["verbose"])
    def f(x: int, verbose: bool = False) -> int:
        return x

    assert f.key(1, verbose=True) == f.key(1, False)
    with pytest.raises(ValueError, match="names no parameter"):
        kachery_cached(ignore=["nope"])(lambda x: x)
    with pytest.raises(TypeError, match="version must be a str"):
        kachery_cached(version=2)(lambda x: x)  # type: ignore[call-overload]


def test_two_functions_with_equal_arguments_never_share_a_key() -> None:
    def make(name: str) -> Any:
        def body(x: int) -> int:
            return x

        body.__qualname__ = body.__name__ = name
        return kachery_cached(version="1")(body)

    assert make("a").key(1) != make("b").key(1)


def test_wrapping_one_function_twice_keeps_its_identity(tmp_path: Path) -> None:
    def spectrum(x: int) -> int:
        return x

    default = kachery_cached(spectrum)
    explicit = kachery_cached(store=Store(tmp_path / "s"))(spectrum)
    assert explicit.identity == default.identity
    assert explicit.identity.endswith("spectrum") and "__wrapped__" not in explicit.identity
    assert explicit.key(3) == default.key(3)


def test_refs_and_uri_strings_key_by_hash_only() -> None:
    @kachery_cached
    def f(data: Any) -> Any:
        return None

    assert f.key(Ref(H, "x.npy")) == f.key(f"sha1://{H}?label=other") == f.key(Ref(H))
    assert f.key(Ref(H)) != f.key(Ref("cd" * 20))


def test_arrays_key_by_content() -> None:
    @kachery_cached
    def f(a: Any) -> Any:
        return None

    x = np.arange(12.0).reshape(3, 4)
    assert f.key(x) == f.key(x.copy()) == f.key(np.asfortranarray(x))
    assert f.key(x) != f.key(x.astype(np.float32))
    assert f.key(x) != f.key(x.reshape(4, 3))


def test_unhashable_argument_names_the_argument() -> None:
    class Opaque:
        pass

    @kachery_cached
    def f(model: Any, x: int) -> int:
        return x

    with pytest.raises(UnhashableArgumentError, match=r"argument 'model' of .*ignore="):
        f(Opaque(), 1)


def _load(path: Path, source: str, name: str = "memo_probe") -> ModuleType:
    path.mkdir(parents=True, exist_ok=True)
    file = path / f"{name}.py"
    file.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


BASE = '''
from kachery_flows import kachery_cached

@kachery_cached
def f(x, scale=2):
    """Scale x."""
    return x * scale
'''

COSMETIC = '''
from kachery_flows import kachery_cached


@kachery_cached
def f(x,
      scale=2):  # a comment
    """A different docstring."""

    # another comment
    return (x * scale)
'''

EDITED = BASE.replace("return x * scale", "return x * scale + 1")
DEFAULT = BASE.replace("scale=2", "scale=3")

VERSIONED = """
from kachery_flows import kachery_cached

@kachery_cached(version="{version}")
def f(x, scale=2):
    return {body}
"""


def test_body_changes_change_the_key_cosmetic_ones_do_not(tmp_path: Path) -> None:
    base = _load(tmp_path / "a", BASE).f
    assert _load(tmp_path / "b", COSMETIC).f.key(3) == base.key(3)
    assert _load(tmp_path / "c", EDITED).f.key(3) != base.key(3)
    assert _load(tmp_path / "d", DEFAULT).f.key(3) != base.key(3)
    assert base.identity == "memo_probe.f"
    assert base.code.startswith("source:")


def test_version_pins_the_key_through_edits(tmp_path: Path) -> None:
    v1 = _load(tmp_path / "a", VERSIONED.format(version="1", body="x * scale")).f
    v1_edit = _load(tmp_path / "b", VERSIONED.format(version="1", body="x * scale + 1")).f
    v2 = _load(tmp_path / "c", VERSIONED.format(version="2", body="x * scale")).f
    assert v1.key(3) == v1_edit.key(3)
    assert v1.key(3) != v2.key(3)
    assert v1.code != v1_edit.code  # still recorded for provenance


def test_functions_without_source_fall_back_to_bytecode() -> None:
    namespace: dict[str, Any] = {}
    exec("def g(x):\n    return x + 1\n", namespace)
    exec("def h(x):\n    return x + 2\n", namespace)
    g = kachery_cached(namespace["g"])
    assert g.code.startswith(f"bytecode-{sys.version_info[0]}.{sys.version_info[1]}:")
    namespace2: dict[str, Any] = {}
    exec("def g(x):\n    return x + 1\n", namespace2)
    assert kachery_cached(namespace2["g"]).key(1) == g.key(1)
    namespace3: dict[str, Any] = {}
    exec("def g(x):\n    return x + 2\n", namespace3)
    assert kachery_cached(namespace3["g"]).key(1) != g.key(1)


KEY_SCRIPT = """
import json, sys
import numpy as np
import memo_funcs
from kachery_flows import Ref
print(json.dumps({
    "square": memo_funcs.slow_square.key(3.0, "ignored-marker"),
    "signal": memo_funcs.make_signal.key(100, seed=7, marker="m"),
    "total": memo_funcs.total.key({"a": np.arange(10.0)[::2], "s": {"x", "y", "z"}}, "m"),
    "ref": memo_funcs.total_of_ref.key(Ref(%r), "m"),
}))
"""


def test_keys_are_stable_across_processes_hash_seeds_and_directories(tmp_path: Path) -> None:
    script = KEY_SCRIPT % H
    outputs = []
    for i, seed in enumerate(("0", "1", "4242", "random")):
        cwd = tmp_path / f"cwd{i}"
        cwd.mkdir()
        out = run_python(
            ["-c", script],
            cwd=cwd,
            PYTHONHASHSEED=seed,
            KACHERY_CLOUD_DIR=str(tmp_path / f"store{i}"),
        )
        outputs.append(json.loads(out))
    assert all(o == outputs[0] for o in outputs)
    here = {
        "square": memo_funcs.slow_square.key(3.0, "other-marker"),
        "ref": memo_funcs.total_of_ref.key(Ref(H), "m"),
    }
    assert {k: outputs[0][k] for k in here} == here


def make_scaler(scale: Any, version: str | None = None) -> Any:
    def helper(x: float) -> float:
        return x

    @kachery_cached(version=version)
    def scaled(x: float) -> float:
        return helper(x) * scale

    return scaled


def test_captured_values_are_part_of_the_key() -> None:
    assert make_scaler(2.0).key(1.0) == make_scaler(2.0).key(1.0)
    assert make_scaler(2.0).key(1.0) != make_scaler(3.0).key(1.0)
    assert make_scaler(2.0)(1.0) == 2.0 and make_scaler(3.0)(1.0) == 3.0
    assert make_scaler(np.arange(3)).key(1.0) != make_scaler(np.arange(4)).key(1.0)
    assert make_scaler(2.0, version="1").key(1.0) != make_scaler(3.0, version="1").key(1.0)
    record = make_scaler(2.0).record(1.0)
    assert record is not None and record["closure"] == make_scaler(2.0).closure


def test_captured_values_without_a_token_need_a_version() -> None:
    class Connection:
        pass

    with pytest.raises(UnhashableArgumentError, match=r"captures 'scale'.*version="):
        make_scaler(Connection())
    assert make_scaler(Connection(), version="1").key(1.0) == make_scaler(
        Connection(), version="1"
    ).key(1.0)


def _named(func: Any, module: str, qualname: str) -> Any:
    func.__module__, func.__qualname__ = module, qualname
    return func


def test_keys_stay_byte_identical_across_releases() -> None:
    """Known keys: a change of the key framing would orphan every existing cache entry."""

    def spectrum(x: Any, fs: float = 1000.0, *, label: str = "a", verbose: bool = False) -> Any:
        return None

    def plus_one(x: int) -> int:
        return x + 1

    pinned = kachery_cached(version="2", ignore=["verbose"])(
        _named(spectrum, "pinned.analysis", "spectrum")
    )
    assert pinned.key(np.arange(4.0), label="b", verbose=True) == PINNED_VERSION_KEY
    assert pinned.key([1, "two", 3.0], fs=2.0) == PINNED_VERSION_KEY_2
    by_source = kachery_cached(_named(plus_one, "pinned.analysis", "plus_one"))
    assert by_source.code == PINNED_SOURCE_CODE
    assert by_source.key(7) == PINNED_SOURCE_KEY

    def make(scale: float) -> Any:
        def scaled(x: float) -> float:
            return x * scale

        return scaled

    captured = kachery_cached(_named(make(2.0), "pinned.analysis", "scaled"))
    assert captured.key(1.5) == PINNED_CLOSURE_KEY

    def make_accented(é: float) -> Any:  # a non-ASCII captured name
        def g(x: float) -> float:
            return x * é

        return g

    assert closure_fingerprint(make_accented(2.0), strict=True) == PINNED_ACCENTED_CLOSURE


PINNED_VERSION_KEY = "b93ce6361b15dfcf8db19c355771e5ac186806da"
PINNED_VERSION_KEY_2 = "5e8ea0e7d891a73b7e5e332edfeaa94503b32d04"
PINNED_SOURCE_CODE = "source:0650303cb913a159efba5ab719b281046f40c3c1"
PINNED_SOURCE_KEY = "b97705a8db8700a26b8c08ab2a005736b83162c5"
PINNED_CLOSURE_KEY = "91fad4949f5e3ea8d59ca7794b9b37cdc92857a4"
PINNED_ACCENTED_CLOSURE = "a5310235cd4848f0971b8e5fb5316fea41510fcd"
