"""The documentation cannot drift from the code: the CLI reference is generated from the
parser, every environment variable the package reads is documented, the error messages
quoted in troubleshooting.md are the ones the code produces, the benchmark report renders,
and the docstring examples run."""

from __future__ import annotations

import doctest
import errno
import importlib
import inspect
import json
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import kachery_flows as kf
from kachery_flows import Store, StoreWriteError, kachery_cached
from kachery_flows._retry import RetryPolicy
from kachery_flows.cli._reference import render_reference
from kachery_flows.zones import open_zone
from kachery_flows.zones.http import HttpZone
from kachery_flows.zones.local import LocalZone

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
HOME_STORE = "/home/me/.kachery-cloud"
LAB = "/lab/kachery"
MISSING = "sha1://0123456789abcdef0123456789abcdef01234567"


def test_cli_reference_is_generated_from_the_parser() -> None:
    assert (DOCS / "cli.md").read_text() == render_reference(), (
        "docs/cli.md is stale: python -m kachery_flows.cli._reference > docs/cli.md"
    )


def test_every_environment_variable_is_documented() -> None:
    page = (DOCS / "configuration.md").read_text()
    names, constants = set(), set()
    for path in (ROOT / "kachery_flows").rglob("*.py"):
        text = path.read_text()
        names |= set(re.findall(r'"(KACHERY_[A-Z_]+)"', text))
        # module-level Python constants (e.g. kachery_flows.prefect.KACHERY_DEFAULT, named
        # in its __all__) are not environment variables
        constants |= set(re.findall(r"^(KACHERY_[A-Z_]+)\s*[:=]", text, re.MULTILINE))
    names -= constants
    assert "KACHERY_CLOUD_DIR" in names and "KACHERY_ZONE" in names
    assert sorted(n for n in names if f"`{n}`" not in page) == []


def test_every_docs_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert sorted(p for p in pages if p not in nav) == []


PUBLIC_MODULES = [
    "kachery_flows",
    "kachery_flows.prefect",
    "kachery_flows.dask",
    "kachery_flows.zones",
    "kachery_flows.testing",
    "kachery_flows.tokens",
    "kachery_flows.garbage",
    "kachery_flows.records",
    "kachery_flows.action_cache",
    "kachery_flows.refmap",
]


def test_every_public_name_and_method_has_a_docstring() -> None:
    missing = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if not callable(obj):
                continue
            if not inspect.getdoc(obj):
                missing.append(f"{module_name}.{name}")
            if not inspect.isclass(obj):
                continue
            for attr, value in vars(obj).items():
                func = value.fget if isinstance(value, property) else value
                func = getattr(func, "__func__", func)
                if attr.startswith(("_", "test_")) or not inspect.isfunction(func):
                    continue
                if not inspect.getdoc(getattr(obj, attr) if func is value else value):
                    missing.append(f"{module_name}.{name}.{attr}")
    assert missing == []


# ------------------------------------------------------------- troubleshooting
def _raised(fn: Callable[[], object]) -> BaseException:
    try:
        fn()
    except Exception as exc:
        return exc
    raise AssertionError("expected an error")


def _corrupt(path: Path) -> None:
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))


def _messages(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """(error class, message) for every error troubleshooting.md quotes; paths that the test
    has to create under ``tmp`` are shown as the page's example paths."""
    home = Store(HOME_STORE)
    yield "ObjectNotFoundError", str(_raised(lambda: home.load_text(MISSING)))
    with_zone = Store(HOME_STORE, zone=LocalZone(LAB))
    yield "ObjectNotFoundError", str(_raised(lambda: with_zone.load_text(MISSING)))
    for bad in (
        MISSING.upper().replace("SHA1", "sha1"),
        "/data/recording.npy",
        "https://example.org/recording.npy",
    ):
        yield "InvalidURIError", str(_raised(lambda bad=bad: kf.parse_uri(bad)))

    local = Store(tmp / "store")
    uri = local.store_text("results")
    _corrupt(local.object_path(uri))
    message = str(_raised(lambda: local.load_text(uri, verify=True)))
    yield "CorruptObjectError", message.replace(str(tmp / "store"), HOME_STORE)

    zone = LocalZone(tmp / "lab")
    uri = Store(tmp / "a", zone=zone).store_text("results")
    _corrupt(zone.root / Store(tmp / "x").object_path(uri).relative_to(tmp / "x"))
    message = str(_raised(lambda: Store(tmp / "b", zone=zone).load_text(uri)))
    yield "CorruptObjectError", message.replace(str(tmp / "lab"), LAB)

    closed = HttpZone(
        "http://127.0.0.1:9/kachery", retry=RetryPolicy(max_attempts=2, initial_delay=0.01)
    )
    message = str(_raised(lambda: Store(tmp / "c", zone=closed).load_text(MISSING)))
    yield "ZoneUnavailableError", message

    import pickle

    evil = local.put_bytes(pickle.dumps(print, protocol=4))
    yield "UnsafePickleError", str(_raised(lambda: local.load_pkl(evil)))
    yield "DecodeError", str(_raised(lambda: local.load_json(local.store_text("not json"))))
    yield "ValueError", str(_raised(lambda: local.store_json({"snr": float("nan")})))

    def band_powers(x: object) -> object:
        return x

    band_powers.__module__, band_powers.__qualname__ = "analysis", "band_powers"
    cached = kachery_cached(band_powers)
    yield "UnhashableArgumentError", str(_raised(lambda: cached(threading.Lock())))

    monkeypatch.setenv("KACHERY_CLOUD_DIR", HOME_STORE)
    yield "ZoneError", str(_raised(lambda: open_zone("lab")))
    monkeypatch.setenv("KACHERY_CLOUD_DIR", str(tmp / "publisher"))
    monkeypatch.setenv("KACHERY_ZONE", "kachery:default")
    monkeypatch.delenv("KACHERY_BASE_URL")
    message = str(_raised(lambda: kf.store_text("publish me")))
    yield "ZonePermissionError", message
    monkeypatch.delenv("KACHERY_ZONE")

    full = OSError(errno.ENOSPC, "No space left on device")
    staging = f"{HOME_STORE}/.kachery-flows/staging/tmp1a2b3c.part"
    yield "StoreWriteError", str(StoreWriteError.from_os_error(full, "write", staging))


def test_troubleshooting_quotes_the_real_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = (DOCS / "troubleshooting.md").read_text()
    quoted = " ".join(page.split())
    missing = [
        f"{cls}: {message}"
        for cls, message in _messages(tmp_path, monkeypatch)
        if f"{cls}: {' '.join(message.split())}" not in quoted
    ]
    assert missing == [], "troubleshooting.md does not quote these messages:\n" + "\n".join(missing)


# ------------------------------------------------------------ benchmark report
def test_benchmark_report_renders_tables_and_plots(tmp_path: Path) -> None:
    results = tmp_path / "results.jsonl"
    tables = [
        {
            "script": "bench_store",
            "kind": "ratio",
            "title": "store a 1 MiB array",
            "baseline": "np.save",
            "rows": [
                {"case": "np.save", "seconds": 0.002},
                {"case": "kf.store_npy", "seconds": 0.0021},
            ],
        },
        {
            "script": "bench_memoize",
            "kind": "comparison",
            "title": "memo",
            "rows": [
                {
                    "what": "hit",
                    "ours": 3e-5,
                    "anchor": 2e-4,
                    "anchor_name": "joblib",
                    "target": "≥ 3×",
                },
                {"what": "key of a Ref", "ours": 2e-6},
            ],
        },
        {"script": "bench_store", "kind": "note", "title": "import kachery_flows: 60 ms"},
    ]
    results.write_text("".join(json.dumps(t) + "\n" for t in tables))
    docs = tmp_path / "docs"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "report.py"),
            "--from-json",
            str(results),
            "--docs",
            str(docs),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    page = (docs / "benchmarks.md").read_text()
    assert "| kf.store_npy | 2.1 ms | 1.05× |" in page
    assert "| hit | 30.0 µs | 200.0 µs (joblib) | 6.7× | ≥ 3× |" in page
    assert "- import kachery_flows: 60 ms" in page
    for script in ("bench_store", "bench_memoize"):
        png = docs / "img" / f"{script}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"](img/{script}.png)" in page


# ------------------------------------------------------------------ doctests
DOCTEST_MODULES = [
    "kachery_flows._api",
    "kachery_flows.uri",
    "kachery_flows.memoize",
    "kachery_flows.store",
    "kachery_flows.tokens",
    "kachery_flows.dask._arrays",
    "kachery_flows.prefect._policy",
]


@pytest.mark.parametrize("name", DOCTEST_MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(module, globs={"np": np, "kf": kf}) if t.examples]
    assert tests, f"{name} has no docstring examples"
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0
