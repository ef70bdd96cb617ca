"""Encoders and decoders, byte-compatible with kachery-cloud.

* text: UTF-8, no BOM, no newline translation.
* json: ``sort_keys``, ``separators=(',', ':')``, ``ensure_ascii``, ``allow_nan=False``;
  floats stay floats; namedtuples become objects (simplejson's behaviour); ``Ref`` values
  become their URI; ``Decimal`` is rejected.
* npy: exactly the bytes of ``np.save(..., allow_pickle=False)``.
* pkl: pickle protocol 4; loading goes through an allow-list unless ``trusted=True``.
"""

from __future__ import annotations

import io
import json
import os
import pickle
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._safe_pickle import safe_loads
from ._safeopen import open_regular
from .errors import DecodeError, UnsafePickleError
from .uri import Ref

if TYPE_CHECKING:
    import numpy as np

    from .hashing import HashingWriter

__all__ = [
    "decode_json",
    "decode_pkl",
    "decode_text",
    "encode_json",
    "encode_pkl",
    "encode_text",
    "load_npy_file",
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
    if isinstance(obj, Ref):
        return obj.uri
    if isinstance(obj, Decimal):
        raise TypeError(
            "Decimal is not supported by store_json; convert it to float or str first"
        )
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
    if arr.dtype.hasobject:
        raise TypeError(
            f"cannot store an array of dtype {arr.dtype} as npy (it would need pickle); "
            "convert it to a numeric or fixed-width string dtype, or use store_pkl"
        )
    if not getattr(type(arr.dtype), "_legacy", True):
        raise TypeError(f"dtype {arr.dtype} cannot be stored in .npy without pickle")
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

    Stored objects reach this through :func:`kachery_flows._results.unpickle`, which
    decides ``trusted``; nothing else in the package unpickles."""
    try:
        if trusted:
            return pickle.loads(data)
        return safe_loads(data)
    except UnsafePickleError:
        raise
    except Exception as exc:
        raise DecodeError(f"{where} is not a loadable pickle: {exc}") from exc
