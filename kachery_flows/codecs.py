"""The codecs: one table of how values become stored bytes and back, byte-compatible
with kachery-cloud.

=========  ========  ==================================================================
codec      suffix    bytes
=========  ========  ==================================================================
bytes      (none)    the bytes as given
text       .txt      UTF-8, no BOM, no newline translation
json       .json     ``sort_keys``, ``separators=(',', ':')``, ``ensure_ascii``,
                     ``allow_nan=False``; floats stay floats; namedtuples become objects
                     (simplejson's behaviour); ``Ref`` values become their URI;
                     ``Decimal`` is rejected
npy        .npy      exactly the bytes of ``np.save(..., allow_pickle=False)``
pkl        .pkl      pickle protocol 4; loading goes through an allow-list unless trusted
=========  ========  ==================================================================

:data:`CODECS` is the table (a label's suffix names its codec: :func:`codec_for_label`);
:func:`npy_problem` / :func:`fits_npy` are the one rule for what ``.npy`` can hold; and
:func:`unpickle` is the one place a stored pickle is decoded, applying the trust rule.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ._safe_pickle import safe_loads
from ._safeopen import open_regular
from .errors import CorruptObjectError, DecodeError, UnsafePickleError

if TYPE_CHECKING:
    import numpy as np

    from .hashing import HashingWriter

__all__ = [
    "CODECS",
    "RESULT_CODECS",
    "Codec",
    "codec_for_label",
    "decode_json",
    "decode_pkl",
    "decode_text",
    "encode_json",
    "encode_pkl",
    "encode_text",
    "fits_npy",
    "get_codec",
    "load_npy_file",
    "npy_problem",
    "suffix",
    "unpickle",
    "write_npy",
]

PICKLE_PROTOCOL = 4


def encode_text(text: str) -> bytes:
    """UTF-8 bytes of ``text`` exactly as given."""
    if not isinstance(text, str):
        raise TypeError(f"store_text expects str, got {type(text).__name__}")
    return text.encode("utf-8")


def decode_text(data: bytes, where: str) -> str:
    """Decode UTF-8 text."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"{where} is not UTF-8 text: {exc}") from exc


def _is_ref(obj: Any) -> bool:
    """Whether ``obj`` is a :class:`~kachery_flows.uri.Ref`. A Ref exists only once
    :mod:`kachery_flows.uri` is imported, so it is looked up, not imported: ``uri`` imports
    this module (for the codec table), which must not import it back."""
    uri = sys.modules.get("kachery_flows.uri")
    return uri is not None and isinstance(obj, uri.Ref)


def _jsonable(obj: Any) -> Any:
    # stdlib json writes tuples (and so namedtuples) as arrays; simplejson, which
    # kachery-cloud uses, writes namedtuples as objects. Convert them first.
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_asdict"):
        return {k: _jsonable(v) for k, v in obj._asdict().items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if _is_ref(obj):
        return obj.uri
    if isinstance(obj, Decimal):
        raise TypeError("Decimal is not supported by store_json; convert it to float or str first")
    if type(obj).__module__ == "numpy":
        raise TypeError(
            f"numpy scalar {obj!r} ({type(obj).__name__}) is not JSON-serializable as "
            "kachery-cloud encodes JSON; convert it with .item() first"
        )
    raise TypeError(
        f"object of type {type(obj).__name__} is not JSON-serializable; store arrays with "
        "store_npy and other objects with store_pkl"
    )


def encode_json(obj: Any) -> bytes:
    """kachery-cloud's canonical JSON bytes for ``obj``."""
    try:
        text = json.dumps(
            _jsonable(obj),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=True,
            allow_nan=False,
        )
    except ValueError as exc:
        raise ValueError(f"cannot store as JSON: {exc} (NaN and Infinity are not JSON)") from exc
    return text.encode("ascii")


def decode_json(data: bytes, where: str) -> Any:
    """Parse JSON bytes; pathological input (deep nesting, huge ints) is a DecodeError."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise DecodeError(f"{where} is not valid JSON: {exc}") from exc


def npy_problem(dtype: np.dtype[Any]) -> str | None:
    """Why arrays of ``dtype`` cannot be stored as ``.npy`` (without pickle), or None if
    they can: the one rule that ``store_npy``, memo results and Dask chunks share."""
    if dtype.hasobject:
        return (
            f"dtype {dtype} holds Python objects, which .npy can only store with pickle; "
            "convert the array to a numeric or fixed-width string dtype first "
            "(e.g. arr.astype('U20'))"
        )
    if not getattr(type(dtype), "_legacy", True):
        return f"dtype {dtype} cannot be stored in .npy without pickle"
    return None


def fits_npy(value: Any) -> bool:
    """Whether ``value`` is a plain numpy array (``ndarray`` or ``memmap``, not another
    subclass) that ``.npy`` stores without pickle. Never imports numpy: a value can only
    be an array once numpy is imported."""
    np = sys.modules.get("numpy")
    if np is None or type(value) not in (np.ndarray, np.memmap):
        return False
    return npy_problem(value.dtype) is None


def _npy_header(arr: np.ndarray[Any, Any]) -> bytes | None:
    """The header ``np.save`` would write (format 1.0, else 2.0), or None if neither fits."""
    import numpy as np

    header = np.lib.format.header_data_from_array_1_0(arr)
    for write_header in (
        np.lib.format.write_array_header_1_0,
        np.lib.format.write_array_header_2_0,
    ):
        buf = io.BytesIO()
        try:
            write_header(buf, header)
        except ValueError:
            continue
        return buf.getvalue()
    return None


def write_npy(writer: HashingWriter, arr: Any) -> None:
    """Write ``arr`` in ``.npy`` format, byte-identical to ``np.save(allow_pickle=False)``.

    Contiguous arrays are written straight from their buffer (no copy), so the hash is
    computed in the same pass as the write.
    """
    import numpy as np

    arr = np.asanyarray(arr)
    problem = npy_problem(arr.dtype)
    if problem is not None:
        raise TypeError(f"cannot store this array as npy: {problem}, or use store_pkl")
    header = _npy_header(arr)
    if header is None:
        # Rare headers (e.g. non-latin-1 field names) need format 3.0: let numpy write it.
        np.lib.format.write_array(writer, arr, allow_pickle=False)
        return
    writer.write(header)
    if arr.size == 0:
        return
    if arr.flags.c_contiguous:
        data = arr
    elif arr.flags.f_contiguous:
        data = arr.T  # np.save writes F-ordered arrays with fortran_order=True
    else:
        # Copy slabs along the first axis: each is a contiguous piece of the C-order stream.
        rows = max(1, (16 << 20) // max(1, arr[0].nbytes))
        for start in range(0, arr.shape[0], rows):
            slab = np.ascontiguousarray(arr[start : start + rows])
            writer.write(slab.reshape(-1).view(np.uint8))
        return
    # The array outlives the write (the caller holds it), so its hash may finish while
    # the file is fsynced.
    writer.write_unchanged(np.asarray(data).reshape(-1).view(np.uint8))


def _check_npy_header(path: Path, where: str) -> None:
    """Refuse a header that announces more data than the file holds, before numpy
    allocates memory for it (a 100-byte file can announce terabytes)."""
    import numpy as np

    fmt = np.lib.format
    fd, _st = open_regular(str(path))
    with open(fd, "rb") as f:
        try:
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, _fortran, dtype = fmt.read_array_header_1_0(f)
            elif version in ((2, 0), (3, 0)):
                # 3.0 differs from 2.0 only in the header's text encoding (utf-8 field
                # names): read as latin-1 its shape and item size are the same
                shape, _fortran, dtype = fmt.read_array_header_2_0(f)
            else:
                raise ValueError(f"unknown .npy format version {version}")
        except (ValueError, OSError, EOFError, TypeError, SyntaxError) as exc:
            raise DecodeError(f"{where} is not a loadable .npy file: {exc}") from exc
        available = os.fstat(f.fileno()).st_size - f.tell()
    count = 1
    for n in shape:
        count *= n  # Python ints: no overflow
    if dtype.hasobject:
        return  # refused by allow_pickle=False
    announced = count * dtype.itemsize
    if count < 0 or announced > available:
        raise DecodeError(
            f"{where} is not a loadable .npy file: its header announces shape {shape} of "
            f"{dtype} ({announced} bytes) but it holds {available} bytes of data"
        )


def load_npy_file(path: Path, where: str, mmap_mode: str | None = None) -> Any:
    """Load a ``.npy`` file with ``allow_pickle=False``; a header that does not fit the
    file (truncated data, or a bomb announcing terabytes) is a :class:`DecodeError`."""
    if mmap_mode not in (None, "r", "c"):
        raise ValueError(
            f"mmap_mode={mmap_mode!r} is not allowed for stored objects: they are immutable; "
            "use 'r' (read-only) or 'c' (copy-on-write)"
        )
    import numpy as np

    _check_npy_header(path, where)
    try:
        return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)  # type: ignore[arg-type]
    except (ValueError, OSError, EOFError, MemoryError) as exc:
        raise DecodeError(f"{where} is not a loadable .npy file: {exc}") from exc


def encode_pkl(obj: Any) -> bytes:
    """Pickle ``obj`` with protocol 4, as kachery-cloud does on Python <= 3.13."""
    return pickle.dumps(obj, protocol=PICKLE_PROTOCOL)


def decode_pkl(data: bytes, where: str, *, trusted: bool = False) -> Any:
    """Unpickle ``data``: with ``trusted``, by :func:`pickle.loads` (it can run any code);
    otherwise by the safe decoder of :mod:`kachery_flows._safe_pickle`, which builds only
    containers, scalars and plain numpy arrays and refuses anything else with
    :class:`UnsafePickleError`. A malformed stream is a :class:`DecodeError`.

    Stored objects reach this through :func:`unpickle`, which decides ``trusted``;
    nothing else in the package unpickles."""
    try:
        if trusted:
            return pickle.loads(data)
        return safe_loads(data)
    except UnsafePickleError:
        raise
    except Exception as exc:
        raise DecodeError(f"{where} is not a loadable pickle: {exc}") from exc


def unpickle(data: bytes, sha1: str, where: str, trusted: bool | Callable[[str], bool]) -> Any:
    """Decode the stored pickle ``sha1``: every pickle the package loads passes here
    (``load_pkl``, ``Ref.load``, ``dask.load_ref``, memo hits, ``KacherySerializer``).

    ``trusted=True`` (the caller vouches for the writer) unpickles with :mod:`pickle`;
    ``trusted=False`` uses the safe decoder (containers, scalars, plain arrays; anything
    else is :class:`UnsafePickleError`). A callable is the store's trust rule (the action
    cache's ``trusts_pickle``: this store pickled exactly these bytes itself, or trusts its
    zone's pickles, see ``SECURITY.md``): :mod:`pickle` only if it says yes for ``sha1``
    and the bytes hash to ``sha1``; otherwise :class:`UnsafePickleError` (or
    :class:`CorruptObjectError`) and nothing is decoded.
    """
    if callable(trusted):
        if not trusted(sha1):
            raise UnsafePickleError(
                f"not unpickling {where}: this store did not pickle it, and it does not "
                "trust its zone's pickles (KACHERY_FLOWS_TRUST_ZONE_PICKLES=1 or "
                '"trust_pickles": true in zones.json; see SECURITY.md)'
            )
        if hashlib.sha1(data).hexdigest() != sha1:
            raise CorruptObjectError(
                f"{where}: its bytes do not hash to {sha1}", uri=f"sha1://{sha1}"
            )
        trusted = True
    return decode_pkl(data, where, trusted=trusted)


def _write_bytes(writer: HashingWriter, data: bytes) -> None:
    writer.write(data)


def _write_text(writer: HashingWriter, text: str) -> None:
    writer.write(encode_text(text))


def _write_json(writer: HashingWriter, obj: Any) -> None:
    writer.write(encode_json(obj))


def _write_pkl(writer: HashingWriter, obj: Any) -> None:
    writer.write(encode_pkl(obj))


def _decode_bytes(data: bytes, where: str) -> bytes:
    return data


@dataclass(frozen=True)
class Codec:
    """One row of the codec table: how a value becomes the bytes of a stored object."""

    #: ``bytes``, ``text``, ``json``, ``npy`` or ``pkl``; recorded on a :class:`Ref`.
    name: str
    #: The label suffix that names this codec (``""`` for bytes): see :func:`suffix`.
    suffix: str
    #: Write a value's bytes to a writer (it hashes them in the same pass).
    write: Callable[[HashingWriter, Any], None]
    #: ``decode(data, where)``: the value of an object's bytes (pickles: the safe
    #: decoder; :func:`unpickle` applies the trust rule). None for npy, which is loaded
    #: from its file by :func:`load_npy_file` so that it can be memory-mapped.
    decode: Callable[[bytes, str], Any] | None
    #: Whether a memoized result may be stored with it (a text result is json).
    result: bool


#: The codec table, by name, in the order the codecs are listed to users.
CODECS: Mapping[str, Codec] = MappingProxyType(
    {
        codec.name: codec
        for codec in (
            Codec("bytes", "", _write_bytes, _decode_bytes, result=True),
            Codec("text", ".txt", _write_text, decode_text, result=False),
            Codec("json", ".json", _write_json, decode_json, result=True),
            Codec("npy", ".npy", write_npy, None, result=True),
            Codec("pkl", ".pkl", _write_pkl, decode_pkl, result=True),
        )
    }
)
#: The codecs memoized results use (the closed set an action-cache entry may name).
RESULT_CODECS = frozenset(name for name, codec in CODECS.items() if codec.result)


def get_codec(name: str) -> Codec:
    """The codec called ``name``; ValueError naming the known ones otherwise."""
    codec = CODECS.get(name) if isinstance(name, str) else None
    if codec is None:
        raise ValueError(f"unknown codec {name!r}; expected one of {tuple(CODECS)}")
    return codec


def suffix(name: str) -> str:
    """The label suffix of codec ``name`` (``.npy``, ``.json``, ...; ``""`` for bytes)."""
    return get_codec(name).suffix


def codec_for_label(label: str) -> str | None:
    """The codec a label's suffix names (case-insensitive), or None."""
    lowered = label.lower()
    for codec in CODECS.values():
        if codec.suffix and lowered.endswith(codec.suffix):
            return codec.name
    return None
