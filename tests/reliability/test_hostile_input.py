"""Hostile input: URIs, pickles, JSON bombs and npy headers.

* URI fuzzing (a handwritten corpus, then Hypothesis): every input either raises
  ``InvalidURIError`` or parses to a canonical ``Ref``; loading it touches no path outside
  the store and zone roots (audit hooks, plus a spy on ``os.stat``), and asks an HTTP zone
  only for ``sha1/aa/bb/cc/<hash>``. Labels are inert.
* Pickle payloads placed in a zone (a directory, and over HTTP), in every shape known to
  bypass allow-lists, are refused by ``load_pkl`` and ``Ref.load`` without
  ``trusted=True``, and never run; Hypothesis-built opcode streams never get a global
  outside the allow-list.
* JSON bombs and malicious ``.npy`` headers give a typed ``DecodeError``, in bounded memory.
"""

from __future__ import annotations

import ast
import contextlib
import pickle
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from rel_audit import Recording, recording
from rel_helpers import count

from kachery_flows import (
    DecodeError,
    InvalidURIError,
    KacheryError,
    ObjectNotFoundError,
    Ref,
    Store,
    UnsafePickleError,
    ZoneError,
    parse_uri,
)
from kachery_flows._retry import RetryPolicy
from kachery_flows._safe_pickle import ALLOWED_GLOBALS
from kachery_flows.codecs import decode_json, decode_pkl
from kachery_flows.testing import DirectoryHTTPServer
from kachery_flows.zones import HttpZone, LocalZone, object_key

H = "d9e989f651cdd269d7f9bb8a215d024d8d283688"
TALLY: dict[str, int] = {}


def _tally(name: str) -> None:
    TALLY[name] = TALLY.get(name, 0) + 1


# ------------------------------------------------------------------------- URIs
CORPUS = [
    "sha1://../../etc/passwd",
    "sha1://../../../../../../etc/passwd",
    "sha1://..%2f..%2fetc",
    f"sha1://{H[:-1]}",
    f"sha1://{H}0",
    f"sha1://{H.upper()}",
    f"sha1://{H[:20].upper()}{H[20:]}",
    "sha1://" + "٠١٢٣٤٥٦٧٨٩" * 4,  # Arabic-Indic digits
    "sha1://" + "１" * 40,  # full-width digits
    f"sha1://%2e%2e/{H}",
    f"sha1://{H}/%2e%2e/%2e%2e/etc/passwd",
    f"sha1://{H}/..%2F..%2Fx",
    f"sha1://{H}\\..\\..\\x",
    f"sha1:\\\\{H}",
    f"sha1://{H}\x00",
    f"sha1://\x00{H}",
    f"sha1://{H}\n",
    f"sha1://{H}\r\n/etc/passwd",
    "sha1://" + "a" * 1_000_000,
    f"sha1:///{H}",
    "sha1:///etc/passwd",
    f"SHA1://{H}",
    f"Sha1://{H}",
    f"sha1:{H}",
    f"sha1://{H}?label=../../x",
    f"sha1://{H}?label=a&label=../../b",
    f"sha1://{H}?label=%00",
    f"sha1://{H}?location=/etc/passwd",
    f"sha1://{H}/../../../etc/passwd",
    f"kachery:z:sha1:{H}/../../x",
    f"kachery:../..:sha1:{H}",
    "kachery:z:sha1:../../etc",
    f"kachery:z:sha1:{H}:../../x",
    "file:///etc/passwd",
    f"file://{H}",
    "/etc/passwd",
    f"../../{H}",
    H,
    f"s3://bucket/{H}",
    f"http://127.0.0.1:9/{H}",
    f"sha256://{H}{H[:24]}",
    f"md5://{H[:32]}",
    "",
    " ",
    f" sha1://{H}",
    f"sha1://{H} ",
    f"sha1://{H}#frag",
    f"sha1://{H}%00",
    f"sha1://{H}%2F..",
    f"sha1://{'a' * 40}/" + "x" * 10_000,
]


def _expected(uri: str) -> str | None:
    """The hash a canonical parse must find, or None if the input must be rejected."""
    for prefix in ("sha1://",):
        if uri.startswith(prefix) and len(uri) >= len(prefix) + 40:
            candidate = uri[len(prefix) : len(prefix) + 40]
            return candidate
    if uri.startswith("kachery:"):
        parts = uri.split(":")
        return parts[3] if len(parts) >= 4 else None
    return None


@pytest.fixture
def roots(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A store in front of a LocalZone, a store in front of an HTTP zone over the same
    directory, and the server; one object stored."""
    base = tmp_path / "uri-fuzz"
    zone_dir = base / "zone"
    zone_dir.mkdir(parents=True)
    server = DirectoryHTTPServer(zone_dir).start()
    retry = RetryPolicy(total_seconds=1.0, max_attempts=1)
    local = Store(base / "local", zone=LocalZone(zone_dir, fsync=False), fsync=False)
    http = Store(base / "http", zone=HttpZone(server.url, retry=retry), fsync=False)
    ref = local.put_text("the only object")
    # What loads read outside the roots whatever the URI: an HTTP request reads ~/.netrc
    # and CA certificates, a kachery:<zone> URI the user's kachery-cloud key and the
    # network zone's modules. That is allowed, and nothing else.
    with recording() as baseline:
        for store in (http, local):
            store.load_bytes(ref)
            with contextlib.suppress(KacheryError):
                store.load_bytes(f"kachery:somezone:sha1:{'0' * 40}")
    yield {
        "base": base,
        "zone": zone_dir,
        "local": local,
        "http": http,
        "server": server,
        "ref": ref,
        "allowed": set(baseline.outside(base)),
    }
    server.stop()


def _check_uri(uri: str, env: dict[str, Any], source: str) -> None:
    """The property every URI must satisfy (see the module docs)."""
    with recording() as parsing:
        try:
            ref = parse_uri(uri)
        except InvalidURIError:
            ref = None
    assert parsing.paths == [] and parsing.code == [], (uri, parsing.paths, parsing.code)
    _tally(f"{source} {'rejected' if ref is None else 'accepted'}")
    if ref is not None:
        assert ref.sha1 == _expected(uri), uri
        assert parse_uri(ref.uri) == ref and parse_uri(ref.uri).label == ref.label
    server: DirectoryHTTPServer = env["server"]
    before = len(server._server.log)
    for store in (env["local"], env["http"]):
        with recording() as loading:
            try:
                store.load_bytes(uri)
            except (InvalidURIError, ObjectNotFoundError):
                pass
            except ZoneError:
                pass  # a refused redirect, say: still typed
        assert ref is not None or loading.paths == [], uri
        outside = set(loading.outside(env["base"])) - env["allowed"]
        assert outside == set(), (uri, outside)
        assert [c for c in loading.code if c[0] != "import"] == [], uri
    requested = [path for _m, path, _h in server._server.log[before:]]
    if ref is None:
        assert requested == [], uri
    else:
        assert set(requested) <= {object_key(ref.sha1)}, (uri, requested)


def test_uri_corpus(roots: dict[str, Any], figures: Any) -> None:
    for uri in CORPUS:
        _check_uri(uri, roots, "corpus")
    for uri in ("sha1://../../etc/passwd", f"sha1://{H.upper()}", f"sha1://{H}\x00"):
        with pytest.raises(InvalidURIError):
            parse_uri(uri)
    figures.add(
        "hostile input",
        "handwritten URI corpus (traversal, 39/41 hex, upper case, "
        "%2e%2e, backslash, NUL, 1e6 chars, unknown schemes): cases / rejected / "
        "accepted canonically / accesses outside the roots",
        f"{len(CORPUS)} / {TALLY['corpus rejected']} / {TALLY['corpus accepted']} / 0",
    )


HEXISH = st.sampled_from("0123456789abcdefABCDEF./\\%?&=:#@ \x00\n٠１é")
_URI = st.one_of(
    st.text(max_size=120),
    st.builds(lambda s: "sha1://" + s, st.text(HEXISH, max_size=60)),
    st.builds(lambda n, s: f"sha1://{H[:n]}{s}", st.integers(0, 40), st.text(max_size=20)),
    st.builds(
        lambda s, t: f"sha1://{H}{s}{t}",
        st.sampled_from(["/", "?label=", "?", "#"]),
        st.text(max_size=40),
    ),
    st.builds(
        lambda z, h, label: f"kachery:{z}:sha1:{h}{label}",
        st.text(max_size=12),
        st.sampled_from([H, H.upper(), H[:39], H + "0", "../.."]),
        st.one_of(st.just(""), st.text(max_size=20).map(lambda t: ":" + t)),
    ),
    st.from_regex(r"[a-zA-Z0-9]{0,6}://[0-9a-fA-F./%\\]{0,50}", fullmatch=True),
)


# (no "explain" phase: it traces lines with Path.resolve, which the audit would record)
@settings(
    max_examples=count("URI_FUZZ", 1000),
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(uri=_URI)
def test_uri_fuzz(roots: dict[str, Any], uri: str) -> None:
    _tally("uri fuzz")
    _check_uri(uri, roots, "fuzz")


def test_uri_fuzz_figures(figures: Any) -> None:
    """Report what the fuzz test tried (it runs just before this one)."""
    tried = TALLY.get("uri fuzz", 0)
    assert tried >= min(count("URI_FUZZ", 1000), 500)
    figures.add(
        "hostile input",
        "URI fuzz cases (Hypothesis): tried / rejected / accepted "
        "canonically / file system accesses outside the roots",
        f"{tried} / {TALLY.get('fuzz rejected', 0)} / {TALLY.get('fuzz accepted', 0)} / 0",
    )


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    label=st.text(max_size=60).filter(lambda t: not any(ord(c) < 0x20 or c in "\x7f\\" for c in t))
)
def test_labels_are_inert(roots: dict[str, Any], label: str) -> None:
    store: Store = roots["local"]
    ref: Ref = roots["ref"].with_label(label)
    try:
        parsed = parse_uri(ref.uri)
    except InvalidURIError:
        return  # too long, or a '..' in a path-style label: refused, fine
    assert parsed.label == label and parsed.sha1 == ref.sha1
    with recording() as loading:
        assert store.load_text(ref.uri) == "the only object"
    assert set(loading.outside(roots["base"])) <= roots["allowed"]
    assert not any(label and label in p for p in loading.paths if len(label) > 3)


# ---------------------------------------------------------------------- pickles
class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (Path(self.marker), "pwned"))


def _su(text: str) -> bytes:
    """SHORT_BINUNICODE"""
    data = text.encode()
    return b"\x8c" + bytes([len(data)]) + data


def _bu(text: str) -> bytes:
    """BINUNICODE"""
    data = text.encode()
    return b"X" + len(data).to_bytes(4, "little") + data


def _hostile_pickles(marker: Path) -> dict[str, bytes]:
    """Pickles that run code (or reach a way to) when loaded without restriction, in
    the shapes published against allow-listing unpicklers."""
    m = str(marker).encode()
    return {
        "__reduce__ writing a file": pickle.dumps(_Payload(str(marker)), protocol=4),
        "GLOBAL os.system (protocol 0)": b"cos\nsystem\n(S'touch " + m + b"'\ntR.",
        "GLOBAL posix.system": b"cposix\nsystem\n(S'touch " + m + b"'\ntR.",
        "builtins.eval": b"cbuiltins\neval\n(S'__import__(\"os\")'\ntR.",
        "builtins.getattr chain": b"cbuiltins\ngetattr\n(cbuiltins\nobject\nS'__subclasses__'\ntR.",
        "STACK_GLOBAL numpy.__builtins__": (
            b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x05numpy\x94\x8c\x0c__builtins__"
            b"\x94\x93\x94."
        ),
        "dotted name to a method": b"\x80\x04"
        + _su("numpy")
        + _su("ndarray.__reduce_ex__")
        + b"\x93.",
        "dotted DType name": b"\x80\x04"
        + _su("numpy.dtypes")
        + _su("Float64DType.__class__.DType")
        + b"\x93.",
        "INST opcode (protocol 0)": b"(S'touch " + m + b"'\nios\nsystem\n.",
        "OBJ opcode": b"\x80\x02(cos\nsystem\nS'touch " + m + b"'\no.",
        "BUILD setattr on an allow-listed class": b"\x80\x04cnumpy\nndarray\n}"
        + _su("__eq__")
        + _su("x")
        + b"sb.",
        "memo (BINPUT/BINGET) confusion": (
            b"\x80\x02cbuiltins\nlist\nq\x00(h\x00cos\nsystem\nq\x00tq\x01h\x00(S'touch "
            + m
            + b"'\ntR."
        ),
        "allowed _codecs.encode fed to exec": b"\x80\x02cbuiltins\nexec\n(c_codecs\nencode\n("
        + _bu("print(1)")
        + _bu("latin1")
        + b"tRtR.",
        "numpy.load via reduce": b"\x80\x02cnumpy\nload\n(S'" + m + b"'\ntR.",
        "numpy.core.multiarray other function": (
            b"\x80\x02cnumpy.core.multiarray\n_get_ndarray_c_version\n)R."
        ),
    }


@pytest.fixture
def pickle_zone(
    http_directory_server: DirectoryHTTPServer, tmp_path: Path, fast_retry: RetryPolicy
) -> dict[str, Store]:
    zone_dir = http_directory_server.directory
    return {
        "LocalZone": Store(tmp_path / "a", zone=LocalZone(zone_dir, fsync=False)),
        "HttpZone": Store(
            tmp_path / "b", zone=HttpZone(http_directory_server.url, retry=fast_retry)
        ),
    }


def test_pickle_payloads_in_a_zone_never_run(
    pickle_zone: dict[str, Store],
    http_directory_server: DirectoryHTTPServer,
    tmp_path: Path,
    figures: Any,
) -> None:
    marker = tmp_path / "marker"
    payloads = _hostile_pickles(marker)
    harmless = pickle_zone["LocalZone"].put_bytes(b"warm-up")
    for store in pickle_zone.values():  # the HTTP stack imports its modules now, not below
        store.load_bytes(harmless)
    numpy_before = {name: getattr(np.ndarray, name) for name in ("__eq__", "__reduce_ex__")}
    refused = 0
    for what, data in payloads.items():
        sha1 = http_directory_server.put_object(data).rsplit("/", 1)[1]
        uri = f"sha1://{sha1}"
        for store in pickle_zone.values():
            for load in (
                lambda s=store, u=uri: s.load_pkl(u),
                lambda s=store, h=sha1: Ref(h, "x.pkl").load(store=s),
                lambda s=store, h=sha1: Ref(h, codec="pkl").load(store=s),
                lambda s=store, u=uri: s.load(u, "pkl"),
            ):
                with recording() as rec, pytest.raises((UnsafePickleError, DecodeError)) as info:
                    load()
                assert not marker.exists(), what
                assert [c for c in rec.code if c[0] not in ("import", "pickle.find_class")] == []
                _allowed_lookups_only(rec)
                # refused at the first forbidden global; BUILD on an allowed class fails later
                assert isinstance(info.value, UnsafePickleError) or what.startswith("BUILD")
                refused += isinstance(info.value, UnsafePickleError)
    assert {n: getattr(np.ndarray, n) for n in numpy_before} == numpy_before
    assert not marker.exists()
    total = len(payloads) * 2 * 4
    figures.add(
        "hostile input",
        f"hostile pickles ({len(payloads)} shapes) in a LocalZone "
        "and an HttpZone x 4 loaders: refused / executed",
        f"{total} ({refused} UnsafePickleError, {total - refused} DecodeError) / 0",
    )


def test_trusted_opt_in_still_loads_ordinary_pickles(pickle_zone: dict[str, Store]) -> None:
    store = pickle_zone["LocalZone"]
    data = pickle.dumps({"a": np.arange(3), "b": (1, 2.5, "x")}, protocol=4)
    ref = store.put_bytes(data)
    value = store.load_pkl(ref)
    assert value["b"] == (1, 2.5, "x") and np.array_equal(value["a"], np.arange(3))


def _allowed_lookups_only(rec: Recording) -> None:
    for event, args in rec.code:
        if event == "pickle.find_class":
            module, name = ast.literal_eval(args)
            assert (module, name) in ALLOWED_GLOBALS, (module, name)


_OPCODES = st.sampled_from(
    [
        b"(",
        b"t",
        b"R",
        b"b",
        b"l",
        b"d",
        b"N",
        b"\x88",
        b"\x89",
        b"K\x01",
        b"]",
        b"}",
        b"\x85",
        b"\x86",
        b"\x87",
        b"a",
        b"e",
        b"s",
        b"u",
        b"0",
        b"2",
        b"\x94",
        b"h\x00",
        b"q\x00",
        b"S'x'\n",
        b"X\x01\x00\x00\x00y",
        b"\x8c\x01z",
    ]
)
_GLOBALS = st.sampled_from(
    [
        ("os", "system"),
        ("posix", "system"),
        ("builtins", "eval"),
        ("builtins", "exec"),
        ("builtins", "getattr"),
        ("builtins", "__import__"),
        ("builtins", "list"),
        ("builtins", "dict"),
        ("numpy", "ndarray"),
        ("numpy", "load"),
        ("numpy", "__builtins__"),
        ("numpy.dtypes", "Float64DType"),
        ("numpy.dtypes", "Float64DType.__init__"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("subprocess", "Popen"),
        ("collections", "OrderedDict"),
        ("_codecs", "encode"),
        ("pickle", "loads"),
    ]
)


def _global_op(item: tuple[str, str], stack: bool) -> bytes:
    module, name = item
    if stack:
        enc = [x.encode() for x in item]
        return b"".join(b"\x8c" + bytes([len(e)]) + e for e in enc) + b"\x93"
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


@settings(
    max_examples=count("PICKLE_FUZZ", 1000),
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)
@given(
    ops=st.lists(st.one_of(_OPCODES, st.tuples(_GLOBALS, st.booleans())), max_size=25),
    proto=st.sampled_from([b"", b"\x80\x02", b"\x80\x04"]),
)
def test_pickle_opcode_fuzz_never_escapes_the_allow_list(ops: list[Any], proto: bytes) -> None:
    _tally("pickle fuzz")
    body = b"".join(op if isinstance(op, bytes) else _global_op(*op) for op in ops)
    data = proto + body + b"."
    with recording() as rec, contextlib.suppress(UnsafePickleError, DecodeError):
        decode_pkl(data, "fuzz")
    assert [c for c in rec.code if c[0] not in ("import", "pickle.find_class")] == []
    assert rec.paths == []
    _allowed_lookups_only(rec)


def test_pickle_fuzz_figures(figures: Any) -> None:
    tried = TALLY.get("pickle fuzz", 0)
    assert tried >= min(count("PICKLE_FUZZ", 1000), 500)
    figures.add(
        "hostile input",
        "pickle opcode streams fuzzed (Hypothesis): tried / globals "
        "resolved outside the allow-list / code run",
        f"{tried} / 0 / 0",
    )


# ------------------------------------------------------------- JSON and npy bombs
def _peak(fn: Any) -> tuple[BaseException | None, int]:
    tracemalloc.start()
    error: BaseException | None = None
    try:
        fn()
    except BaseException as exc:
        error = exc
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return error, peak


JSON_BOMBS = {
    "nesting 100k deep": b"[" * 100_000 + b"]" * 100_000,
    "nesting 1M deep, unclosed": b'{"a":' * 1_000_000,
    "a 1M-digit integer": b"1" * 1_000_000,
    "a 1M-digit negative integer in a list": b"[-" + b"9" * 1_000_000 + b"]",
    "1e999999999": b"[1e999999999, -1e999999999]",
    "a 10^6-digit exponent": b"1e" + b"9" * 1_000_000,
    "not UTF-8": b"\xff\xfe" + b"\x00{" * 1000,
    "trailing garbage": b'{"a": 1} {"b": 2}',
}


@pytest.mark.parametrize("what", sorted(JSON_BOMBS))
def test_json_bombs_are_bounded(store: Store, what: str, figures: Any) -> None:
    data = JSON_BOMBS[what]
    ref = store.put_bytes(data)
    error, peak = _peak(lambda: store.load_json(ref))
    if "exponent" in what or what == "1e999999999":
        assert error is None  # floats overflow to infinity at once, as json does
    else:
        assert isinstance(error, DecodeError), (what, error)
        assert ref.sha1 in str(error) or "sha1://" in str(error)
    assert peak < 64 * max(len(data), 1 << 16), (what, peak)
    _tally("json bombs")
    if TALLY["json bombs"] == len(JSON_BOMBS):
        figures.add(
            "hostile input",
            f"JSON bombs ({len(JSON_BOMBS)}: deep nesting, 1M-digit "
            "numbers, huge exponents, bad UTF-8): typed DecodeError, peak memory",
            "all bounded (< 64x their size)",
        )


def _npy_with_header(header: dict[str, Any] | str, payload: bytes = b"", pad: int = 0) -> bytes:
    text = header if isinstance(header, str) else repr(header)
    text += " " * pad
    text += "\n"
    body = text.encode("latin1")
    if len(body) < 65536:
        return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body + payload
    return b"\x93NUMPY\x02\x00" + len(body).to_bytes(4, "little") + body + payload


NPY_BOMBS: dict[str, bytes] = {
    "shape 10^12 float64, 64 bytes of data": _npy_with_header(
        {"descr": "<f8", "fortran_order": False, "shape": (10**12,)}, b"\0" * 64
    ),
    "shape 10^6 x 10^6": _npy_with_header(
        {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)}, b"\0" * 64
    ),
    "shape 10^10 bytes": _npy_with_header(
        {"descr": "|u1", "fortran_order": False, "shape": (10**10,)}, b"\0" * 64
    ),
    "shape 2^62": _npy_with_header(
        {"descr": "<f8", "fortran_order": False, "shape": (2**62,)}, b"\0" * 64
    ),
    "negative shape": _npy_with_header(
        {"descr": "<f8", "fortran_order": False, "shape": (-5,)}, b"\0" * 64
    ),
    "object dtype (pickle)": _npy_with_header(
        {"descr": "|O", "fortran_order": False, "shape": (2,)}, pickle.dumps([1, 2])
    ),
    "a 1 MB header": _npy_with_header(
        {"descr": "<f8", "fortran_order": False, "shape": (1,)}, b"\0" * 8, pad=1_000_000
    ),
    "code in the header": _npy_with_header(
        "{'descr': __import__('os').system('touch /tmp/kf-npy-pwned'), 'shape': (1,)}", b"\0" * 8
    ),
    "huge structured dtype": _npy_with_header(
        {
            "descr": [(f"f{i}", "<f8") for i in range(1000)],
            "fortran_order": False,
            "shape": (10**9,),
        },
        b"\0" * 64,
    ),
    "header only": _npy_with_header({"descr": "<f8", "fortran_order": False, "shape": (8,)}),
    "bad magic": b"\x93NUMPX\x01\x00" + b"\0" * 100,
}


@pytest.mark.parametrize("mmap_mode", [None, "r"])
def test_malicious_npy_headers_are_decode_errors(
    store: Store, mmap_mode: str | None, figures: Any
) -> None:
    handled = 0
    for what, data in NPY_BOMBS.items():
        ref = store.put_bytes(data)
        error, peak = _peak(lambda r=ref: store.load_npy(r, mmap_mode=mmap_mode))
        assert isinstance(error, DecodeError), (what, type(error), error)
        assert peak < 16 * len(data) + (4 << 20), (what, peak)
        assert not Path("/tmp/kf-npy-pwned").exists()
        handled += 1
    figures.add(
        "hostile input",
        f"malicious npy headers (mmap_mode={mmap_mode}): huge or "
        "negative shapes, object dtype, 1 MB header, code in the header",
        f"{handled}/{len(NPY_BOMBS)} DecodeError, bounded memory",
    )


def test_decode_json_bounds_a_10m_deep_bomb() -> None:
    error, peak = _peak(lambda: decode_json(b"[" * 10_000_000, "bomb"))
    assert isinstance(error, DecodeError) and isinstance(error, KacheryError)
    assert peak < 64 * 10_000_000
