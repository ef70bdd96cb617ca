"""Attacks on the pickle decoders (run in a child process by ``sec_runner.py``)."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np

from kachery_flows import Store
from kachery_flows.errors import DecodeError, KacheryError, UnsafePickleError
from kachery_flows.uri import Ref


def _array_pickle() -> bytes:
    return pickle.dumps(np.zeros(1, dtype="f8"), protocol=4)


def gadgets() -> dict[str, bytes]:
    """Known gadget families against restricted unpicklers, as pickle bytes."""
    arr = _array_pickle()
    flags = b"J\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t"
    assert flags in arr and b"C\x08" + b"\0" * 8 in arr
    object_flag = arr.replace(flags, flags[:-3] + b"K?t").replace(
        b"C\x08" + b"\0" * 8, b"C\x08" + b"A" * 8
    )
    return {
        "dtype BUILD setting the object flag on raw bytes (segfault)": object_flag,
        "dtype BUILD with an object-dtype elsize swap": arr.replace(
            flags, b"J\xff\xff\xff\xffJ\x08\x00\x00\x00K\x3ft"
        ),
        "array of dtype O with a list of objects as data": pickle.dumps(
            np.array([1, "x"], dtype=object), protocol=4
        ),
        "scalar(dtype('O'), obj)": (
            b"\x80\x02cnumpy.core.multiarray\nscalar\ncnumpy\ndtype\nX\x02\x00\x00\x00O8"
            b"\x89\x88\x87R(K\x03X\x01\x00\x00\x00|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?t"
            b"bcos\ngetcwd\n)R\x86R."
        ),
        "ndarray subclass (recarray)": pickle.dumps(np.rec.array([(1, 2.0)]), protocol=4),
        "ndarray subclass (matrix)": pickle.dumps(np.asmatrix(np.eye(2)), protocol=4),
        "bytearray(2**33) from 32 bytes": (
            b"\x80\x03cbuiltins\nbytearray\n\x8a\x05\x00\x00\x00\x00\x02\x85R."
        ),
        "bytes(2**33)": b"\x80\x03cbuiltins\nbytes\n\x8a\x05\x00\x00\x00\x00\x02\x85R.",
        "list(range(2**40))": (
            b"\x80\x03cbuiltins\nlist\ncbuiltins\nrange\n"
            b"\x8a\x06\x00\x00\x00\x00\x00\x01\x85R\x85R."
        ),
        "a second BUILD on a dtype (clear, then restore the object flag)": (
            b"cnumpy\ndtype\n(S'f8'\nI00\nI01\ntR(I3\nS'<'\nNNNI-1\nI-1\nI0\ntb"
            b"(I3\nS'<'\nNNNI-1\nI-1\nI63\ntb."
        ),
        "frozenset(range(2**40))": (
            b"\x80\x03cbuiltins\nfrozenset\ncbuiltins\nrange\n"
            b"\x8a\x06\x00\x00\x00\x00\x00\x01\x85R\x85R."
        ),
        "_codecs.encode chained base64 (x4/3 per call)": (
            b"\x80\x03c_codecs\nencode\nq\x00h\x00C\x01xX\x06\x00\x00\x00base64\x86R"
            b"X\x06\x00\x00\x00base64\x86R."
        ),
        "os.system": b"cos\nsystem\n(S'touch /tmp/kf-pwned'\ntR.",
        "builtins.eval": b"c__builtin__\neval\n(S'1+1'\ntR.",
        "builtins.getattr on an allowed class": (
            b"\x80\x04\x8c\x08builtins\x8c\x07getattr\x93\x8c\x08builtins\x8c\x04list"
            b"\x93\x8c\x06append\x86R."
        ),
        "numpy.load": b"cnumpy\nload\n(S'/etc/passwd'\ntR.",
        "dotted name numpy.dtype.__init__": (b"\x80\x04\x8c\x05numpy\x8c\x0edtype.__init__\x93."),
        "copyreg._reconstructor": b"ccopyreg\n_reconstructor\n(c__builtin__\nobject\nNtR.",
        "nested pickle.loads": b"cpickle\nloads\n(C\x01.tR.",
        "NEWOBJ on an allowed class": b"\x80\x02c__builtin__\nlist\n)\x81.",
        "extension registry code (EXT1)": b"\x80\x02\x82\x01.",
        "persistent id": b"\x80\x02X\x01\x00\x00\x00xQ.",
        "out-of-band buffer (protocol 5)": b"\x80\x05\x97.",
        "BUILD on an OrderedDict (attribute injection)": (
            b"\x80\x02ccollections\nOrderedDict\n)R}X\x03\x00\x00\x00abcK\x01sb."
        ),
        "array placeholder fetched from the memo before its state": (
            b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b"
            b"\x87Rq\x00h\x00."
        ),
        "array placeholder never given its state": (
            b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b"
            b"\x87R\x85."
        ),
        "array data shorter than its shape (out-of-bounds read)": arr.replace(
            b"K\x01\x85", b"K\x40\x85", 1
        ),
    }


def attack_gadgets(work: Path) -> dict[str, Any]:
    """Every gadget through load_pkl, Ref.load (.pkl label), dask.load_ref."""
    from kachery_flows.dask import load_ref

    store = Store(work / "store")
    outcomes: dict[str, list[str]] = {}
    for what, data in gadgets().items():
        sha1 = store.put_bytes(data).sha1
        seen = []
        for load in (
            lambda h=sha1: store.load_pkl(f"sha1://{h}"),
            lambda h=sha1: Ref(h, "x.pkl").load(store=store),
            lambda h=sha1: load_ref(Ref(h, codec="pkl"), store=store),
        ):
            try:
                value = load()
                seen.append(f"loaded {type(value).__name__}")
            except (UnsafePickleError, DecodeError) as exc:
                seen.append(type(exc).__name__)
        outcomes[what] = seen
    return {"outcomes": outcomes, "pwned": Path("/tmp/kf-pwned").exists()}


def attack_unpickle_choke_point(work: Path) -> dict[str, Any]:
    """A pickle under a non-pkl codec reaches no unpickler; mismatched codecs are typed."""
    from kachery_flows._results import load_value

    store = Store(work / "store")
    marker = work / "ran"
    payload = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    ref = store.put_bytes(payload, "result.txt")
    outcomes = {}
    for codec in ("text", "csv", "pickle", "PKL", "", "json", "bytes", "npy", "pkl"):
        try:
            value = load_value(store, Ref(ref.sha1, "result.txt"), codec)
            outcomes[codec] = f"value {type(value).__name__}"
        except KacheryError as exc:
            outcomes[codec] = type(exc).__name__
    return {"outcomes": outcomes, "ran": marker.exists()}


class Unloadable(Exception):
    """An exception whose pickle cannot be loaded (its __init__ needs two arguments)."""

    def __init__(self, a: int, b: int) -> None:
        super().__init__(a + b)
        self.a, self.b = a, b


def attack_intact_undecodable(work: Path) -> dict[str, Any]:
    """A trusted, intact pickle that fails to unpickle: a typed DecodeError saying so, and
    the object stays in place (never 'missing or corrupt, quarantined')."""
    from kachery_flows._results import load_value, put_value
    from kachery_flows.action_cache import action_cache

    sys.modules["__main__"].Unloadable = Unloadable  # type: ignore[attr-defined]
    Unloadable.__module__ = "__main__"
    store = Store(work / "store")
    ref = put_value(store, Unloadable(1, 2), "result")
    action_cache(store).trust(ref.sha1)
    path = store.object_path(ref)
    try:
        load_value(store, ref, "pkl", trusts_pickle=action_cache(store).trusts_pickle)
        error, message = "none", ""
    except KacheryError as exc:
        error, message = type(exc).__name__, str(exc)
    quarantine = store.quarantine_dir
    return {
        "codec": ref.codec,
        "error": error,
        "message": message,
        "still_there": path.is_file(),
        "quarantined": sorted(p.name for p in quarantine.iterdir()) if quarantine.is_dir() else [],
    }


_OPCODES = [
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
    b"K\x00",
    b"]",
    b"}",
    b"\x8f",
    b"\x91",
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
    b"h\x01",
    b"q\x00",
    b"q\x01",
    b"p0\n",
    b"g0\n",
    b"S'x'\n",
    b"X\x01\x00\x00\x00y",
    b"\x8c\x01z",
    b"C\x08AAAAAAAA",
    b"C\x01b",
    b"J\xff\xff\xff\xff",
    b"\x8a\x05\x00\x00\x00\x00\x02",
    b"G?\xf0\x00\x00\x00\x00\x00\x00",
    b"\x95\x02\x00\x00\x00\x00\x00\x00\x00",
]
_GLOBALS = [
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("builtins", "bytearray"),
    ("builtins", "bytes"),
    ("builtins", "list"),
    ("builtins", "set"),
    ("builtins", "range"),
    ("builtins", "complex"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),
    ("os", "system"),
    ("builtins", "getattr"),
    ("builtins", "eval"),
    ("numpy", "load"),
]
_STRINGS = [b"f8", b"O8", b"V8", b"U3", b"M8", b"latin1", b"base64", b"<", b"|"]


def _graph_size(value: object) -> int:
    seen: set[int] = set()
    stack = [value]
    total = 0
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        total += sys.getsizeof(item)
        if isinstance(item, np.ndarray):
            total += item.nbytes
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
    return total


def attack_fuzz(work: Path, examples: int) -> dict[str, Any]:
    """Hypothesis over the decoder's opcodes, the allowed globals and gadget pieces:
    the decoder returns containers, scalars and arrays no larger than a bounded multiple
    of the input, or raises UnsafePickleError/DecodeError; no code event is audited."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from kachery_flows.codecs import decode_pkl

    events: list[str] = []
    watched = (
        "os.system",
        "subprocess.Popen",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "exec",
        "compile",
        "ctypes.dlopen",
        "open",
    )

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if armed and event in watched:
            events.append(event)

    armed = False
    sys.addaudithook(hook)
    decode_pkl(pickle.dumps([np.arange(3), {"a": 1.5}], protocol=4), "warm-up")
    tally = {"tried": 0, "loaded": 0, "refused": 0, "malformed": 0}
    allowed = (
        type(None),
        bool,
        int,
        float,
        complex,
        str,
        bytes,
        bytearray,
        list,
        tuple,
        set,
        frozenset,
        dict,
        range,
        slice,
        np.ndarray,
        np.generic,
        np.dtype,
    )

    def op(item: Any) -> bytes:
        if isinstance(item, bytes):
            return item
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            return b"c" + item[0].encode() + b"\n" + item[1].encode() + b"\n"
        return b"\x8c" + bytes([len(item[0])]) + item[0]

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        ops=st.lists(
            st.one_of(
                st.sampled_from(_OPCODES),
                st.sampled_from(_GLOBALS),
                st.tuples(st.sampled_from(_STRINGS)),
            ),
            max_size=30,
        ),
        proto=st.sampled_from([b"", b"\x80\x02", b"\x80\x04", b"\x80\x05"]),
    )
    def fuzz(ops: list[Any], proto: bytes) -> None:
        nonlocal armed
        data = proto + b"".join(op(o) for o in ops) + b"."
        tally["tried"] += 1
        armed = True
        try:
            value = decode_pkl(data, "fuzz")
        except UnsafePickleError:
            tally["refused"] += 1
            return
        except DecodeError:
            tally["malformed"] += 1
            return
        finally:
            armed = False
        tally["loaded"] += 1
        stack, seen = [value], 0
        while stack and seen < 100_000:
            item = stack.pop()
            seen += 1
            assert isinstance(item, allowed), type(item)
            if isinstance(item, np.ndarray):
                assert not item.dtype.hasobject
            if isinstance(item, dict):
                stack.extend(item.values())
                stack.extend(item.keys())
            elif isinstance(item, (list, tuple, set, frozenset)):
                stack.extend(item)
        assert _graph_size(value) <= 256 * len(data) + (1 << 20)

    fuzz()
    return {**tally, "code_events": events}
