"""Byte compatibility with the real kachery-cloud 0.4.10, both directions.

kachery-cloud runs in a subprocess (it creates its directory and pulls in its own
dependencies at import time), sharing one ``KACHERY_CLOUD_DIR`` with kachery-flows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kachery_flows import Store

pytest.importorskip("kachery_cloud")

BIG = 1_500_000  # above kachery-cloud's 1 MB hash-cache threshold

KC_STORE = textwrap.dedent(
    """
    import json, sys, numpy as np, kachery_cloud as kcl
    src = sys.argv[1]
    uris = {
        "text": kcl.store_text_local("example text", label="example.txt"),
        "text_unicode": kcl.store_text_local("h\\u00e9llo \\u2603\\n\\U0001f600",
                                             label="\\u00e9 \\u00fc/x?.txt"),
        "text_empty": kcl.store_text_local(""),
        "json": kcl.store_json_local({"example": "dict", "f": [1.0, 2.5, -0.0, 1e22],
                                      "u": "\\u00e9", "n": None}, label="example.json"),
        "npy": kcl.store_npy_local(np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int16),
                                   label="example.npy"),
        "npy_f": kcl.store_npy_local(np.asfortranarray(np.arange(12.0).reshape(3, 4))),
        "pkl": kcl.store_pkl_local({"example": [1, 2.5, "x", None, (3, 4)]},
                                   label="example.pkl"),
        "file": kcl.store_file_local(src, label="big.bin"),
        "empty_file": kcl.store_file_local(sys.argv[2]),
    }
    numpy_pkl = kcl.store_pkl_local({"a": np.arange(6, dtype=np.int16), "s": np.float64(2.5)})
    print(json.dumps(dict(uris, numpy_pkl=numpy_pkl)))
    """
)

KC_LOAD = textwrap.dedent(
    """
    import json, sys, numpy as np, kachery_cloud as kcl
    uris = json.loads(sys.argv[1])
    out = {
        "text": kcl.load_text(uris["text"]),
        "text_unicode": kcl.load_text(uris["text_unicode"]),
        "json": kcl.load_json(uris["json"]),
        "npy": kcl.load_npy(uris["npy"]).tolist(),
        "npy_dtype": str(kcl.load_npy(uris["npy"]).dtype),
        "pkl": kcl.load_pkl(uris["pkl"]),
        "file": open(kcl.load_file(uris["file"]), "rb").read().hex()[:64],
        "file_size": len(open(kcl.load_file(uris["file"]), "rb").read()),
        "empty_file": open(kcl.load_file(uris["empty_file"]), "rb").read().hex(),
    }
    print(json.dumps(out))
    """
)


def _run_kc(script: str, root: Path, *args: str) -> Any:
    env = dict(os.environ, KACHERY_CLOUD_DIR=str(root), PYTHONIOENCODING="utf-8")
    env.pop("PYTHONWARNINGS", None)
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    path = tmp_path / "big.bin"
    path.write_bytes(np.random.default_rng(0).bytes(BIG))
    return path


@pytest.fixture
def empty_file(tmp_path: Path) -> Path:
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")
    return path


def _store_same_with_kachery_flows(store: Store, big: Path, empty: Path) -> dict[str, str]:
    return {
        "text": store.store_text("example text", "example.txt"),
        "text_unicode": store.store_text("h\u00e9llo \u2603\n\U0001f600", "\u00e9 \u00fc/x?.txt"),
        "text_empty": store.store_text(""),
        "json": store.store_json(
            {"example": "dict", "f": [1.0, 2.5, -0.0, 1e22], "u": "\u00e9", "n": None},
            "example.json",
        ),
        "npy": store.store_npy(np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int16), "example.npy"),
        "npy_f": store.store_npy(np.asfortranarray(np.arange(12.0).reshape(3, 4))),
        "pkl": store.store_pkl({"example": [1, 2.5, "x", None, (3, 4)]}, "example.pkl"),
        "file": store.store_file(big, "big.bin"),
        "empty_file": store.store_file(empty),
    }


def test_same_uris_and_kachery_cloud_objects_load_here(
    tmp_path: Path, big_file: Path, empty_file: Path
) -> None:
    kc_root = tmp_path / "kc"
    kc_uris = _run_kc(KC_STORE, kc_root, str(big_file), str(empty_file))
    ours = _store_same_with_kachery_flows(Store(tmp_path / "kf"), big_file, empty_file)
    numpy_pkl = kc_uris.pop("numpy_pkl")
    assert ours == kc_uris  # same bytes, same hashes, same label quoting

    store = Store(kc_root)  # read kachery-cloud's own store
    assert store.load_text(kc_uris["text"], verify=True) == "example text"
    assert store.load_text(kc_uris["text_unicode"]) == "h\u00e9llo \u2603\n\U0001f600"
    assert store.load_text(kc_uris["text_empty"]) == ""
    assert store.load_json(kc_uris["json"]) == {
        "example": "dict",
        "f": [1.0, 2.5, -0.0, 1e22],
        "u": "\u00e9",
        "n": None,
    }
    np.testing.assert_array_equal(
        store.load_npy(kc_uris["npy"], mmap_mode="r"),
        np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int16),
    )
    np.testing.assert_array_equal(store.load_npy(kc_uris["npy_f"]), np.arange(12.0).reshape(3, 4))
    assert store.load_pkl(kc_uris["pkl"]) == {"example": [1, 2.5, "x", None, (3, 4)]}
    assert Path(store.load_file(kc_uris["file"], verify=True)).read_bytes() == (
        big_file.read_bytes()
    )
    assert store.load_bytes(kc_uris["empty_file"]) == b""
    loaded = store.load_pkl(numpy_pkl)  # numpy pickles load through the safe allow-list
    np.testing.assert_array_equal(loaded["a"], np.arange(6, dtype=np.int16))
    assert loaded["s"] == 2.5
    assert store.verify().ok


def test_kachery_cloud_loads_objects_stored_here(
    tmp_path: Path, big_file: Path, empty_file: Path
) -> None:
    root = tmp_path / "shared"
    uris = _store_same_with_kachery_flows(Store(root), big_file, empty_file)
    out = _run_kc(KC_LOAD, root, json.dumps(uris))
    assert out["text"] == "example text"
    assert out["text_unicode"] == "h\u00e9llo \u2603\n\U0001f600"
    assert out["json"] == {"example": "dict", "f": [1.0, 2.5, -0.0, 1e22], "u": "\u00e9", "n": None}
    assert out["npy"] == [[1, 2, 3], [4, 5, 6]] and out["npy_dtype"] == "int16"
    # kachery-cloud's pickle loader returns tuples as tuples; JSON turns them into lists
    assert out["pkl"] == {"example": [1, 2.5, "x", None, [3, 4]]}
    assert out["file"] == big_file.read_bytes().hex()[:64]
    assert out["file_size"] == BIG
    assert out["empty_file"] == ""
