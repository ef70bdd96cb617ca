"""The :class:`Store`: a local content-addressed cache, optionally in front of a zone.

The root holds ``sha1/aa/bb/cc/<hash>`` objects (shared with kachery-cloud) and the
package's own ``.kachery-flows/`` directory; :mod:`kachery_flows._layout` spells every path.

Writes are atomic (see :mod:`kachery_flows._atomic`). Reads from the local cache are
trusted unless ``verify=True``; every byte that comes from a zone is hashed before it
enters the cache: it is downloaded to a staging temp file, hashed, and renamed into the
cache only if the hash matches.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

from . import _default_store, _layout, _marks, _transfer, _verify, codecs
from ._atomic import file_writer, publish, staged_writer
from ._evict import AccessLog, Bound
from ._scan import iter_objects
from ._verify import VerifyReport
from .config import Settings, load_settings
from .hashing import HashingWriter
from .uri import Ref, parse_uri
from .zones import open_zone
from .zones.base import Progress, Zone

__all__ = ["Store", "VerifyReport", "get_default_store"]


class Store:
    """A content-addressed object store over an explicit root (and optional zone).

    Parameters
    ----------
    root:
        Directory holding ``sha1/aa/bb/cc/<hash>``; default ``$KACHERY_CLOUD_DIR`` or
        ``~/.kachery-cloud``. Created on first write, never on construction.
    zone:
        Where objects are shared beyond this machine: a :class:`~kachery_flows.zones.Zone`
        or a spec string as in ``KACHERY_ZONE`` (a zone name from
        ``$KACHERY_CLOUD_DIR/zones.json``, or a ``file://``, ``s3://`` or ``https://``
        URL). ``store_*`` uploads to it (when it is writable) and ``load_*`` falls back
        to it; ``store_*_local`` never uploads.
    fsync:
        fsync each object (and its directory) before it becomes visible. Default on;
        ``KACHERY_FLOWS_FSYNC=0`` turns it off for scratch stores.
    group_shared:
        Make new directories group-writable and setgid, and files group-readable and
        writable, so members of one UNIX group can share the store. Default from
        ``KACHERY_CLOUD_MULTI_USER``.
    trust_zone_pickles:
        Let memo hits unpickle results this store did not pickle itself, i.e. written by
        anyone who can write to the zone (or to this store's ref map). Default: the zone's
        ``trust_pickles`` setting, or ``KACHERY_FLOWS_TRUST_ZONE_PICKLES``; off otherwise,
        and such a hit recomputes instead (see ``SECURITY.md``).
    max_size:
        Size bound of this store as a cache of its zone: bytes, or a text such as
        ``"200G"`` or ``"80%"`` (of the root's disk). When the objects the store adds take
        it past the bound, least-recently-used objects that the zone verifiably holds
        are evicted (see :mod:`kachery_flows._evict`); local-only objects never are.
        Default ``KACHERY_FLOWS_MAX_SIZE``; no bound without it, or without a zone.

    Examples
    --------
    >>> import tempfile
    >>> store = kf.Store(tempfile.mkdtemp(), fsync=False)
    >>> ref = store.put_npy(np.eye(2), "eye.npy")     # put_* return a Ref
    >>> ref.codec, ref.label
    ('npy', 'eye.npy')
    >>> float(store.load_npy(ref, mmap_mode="r")[1, 1])
    1.0
    >>> store.verify().ok
    True
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        zone: Zone | str | None = None,
        fsync: bool | None = None,
        group_shared: bool | None = None,
        trust_zone_pickles: bool | None = None,
        max_size: int | str | None = None,
    ) -> None:
        settings = load_settings()
        self.root = Path(root).expanduser() if root is not None else settings.root
        self.zone: Zone | None = open_zone(zone) if isinstance(zone, str) else zone
        self.fsync = settings.fsync if fsync is None else fsync
        self.group_shared = settings.multi_user if group_shared is None else group_shared
        if trust_zone_pickles is None:
            zone_trusted = self.zone is not None and self.zone.trust_pickles
            trust_zone_pickles = settings.trust_zone_pickles or zone_trusted
        self.trust_zone_pickles = trust_zone_pickles
        max_size = settings.max_size if max_size is None else max_size
        #: The size bound (None: unbounded), see ``max_size``.
        self.bound = Bound(self, max_size) if max_size is not None and self.zone else None
        #: Reads of local objects through this store in this process (eviction spares them).
        self.access_log = AccessLog(str(self.root))

    def __repr__(self) -> str:
        zone = f", zone={self.zone!r}" if self.zone is not None else ""
        return f"Store({str(self.root)!r}{zone})"

    # ----------------------------------------------------------------- layout
    @property
    def staging_dir(self) -> Path:
        """Where temp files are written before they are renamed into place."""
        return _layout.staging_dir(self.root)

    @property
    def quarantine_dir(self) -> Path:
        """Where :meth:`verify` moves corrupt objects."""
        return _layout.quarantine_dir(self.root)

    def object_path(self, ref: str | Ref) -> Path:
        """Local path an object has (or would have) in this store; no I/O."""
        return _layout.object_path(self.root, parse_uri(ref).sha1)

    # ---------------------------------------------------------------- writing
    def write_object(
        self,
        write: Callable[[HashingWriter], object],
        codec: str,
        label: str | None = None,
        *,
        upload: bool = True,
        collectable: bool = False,
    ) -> Ref:
        """Write one object: the package's one write path into the store.

        ``write`` streams the bytes into a staging temp file (hashed in the same pass),
        which is then published atomically as ``sha1/aa/bb/cc/<hash>`` (an existing object
        is success). ``upload`` copies it to a writable zone. ``collectable=True`` means
        the action cache wrote it: it is marked for garbage collection if this call
        created it; otherwise storing bytes that were marked unmarks them (see
        :mod:`kachery_flows._marks`).
        """
        with staged_writer(
            self.staging_dir, fsync=self.fsync, group_shared=self.group_shared
        ) as writer:
            write(writer)
        sha1 = writer.hexdigest()
        created = publish(
            writer.path,
            _layout.object_path(self.root, sha1),
            sha1=sha1,
            fsync=self.fsync,
            group_shared=self.group_shared,
        )
        _marks.after_write(
            self.root,
            sha1,
            created=created,
            collectable=collectable,
            group_shared=self.group_shared,
        )
        ref = Ref(sha1, label, codec)
        if upload:
            self.upload(ref)
        if created and self.bound is not None:
            self.bound.added(writer.size)
        return ref

    def cache_mark_path(self, sha1: str) -> Path:
        """The mark of object ``sha1``: it exists only for objects the action cache wrote,
        which garbage collection may take (see :mod:`kachery_flows._marks`)."""
        return _marks.mark_path(self.root, sha1)

    def upload(
        self, uri: str | Ref, *, progress: Progress | None = None, replace: bool = False
    ) -> bool:
        """Copy a local object to the zone; False if there is no writable zone.

        An object the zone already holds is not sent again, unless ``replace=True``: then
        the local copy is verified first and replaces the zone's (the way to repair a zone
        copy that downloads as corrupt).
        """
        ref = parse_uri(uri)
        if self.zone is None or not self.zone.writable:
            return False
        _transfer.upload(self, self.zone, ref, progress=progress, replace=replace)
        return True

    def download(self, uri: str | Ref, *, progress: Progress | None = None) -> str:
        """Make sure the object is in the local cache (fetched and verified from the
        zone if needed) and return its local path."""
        ref = parse_uri(uri)
        path = self._local_path(ref)
        return str(path if path is not None else self._fetch(ref, progress))

    def put_bytes(self, data: bytes, label: str | None = None, *, local: bool = False) -> Ref:
        """Store raw bytes and return their :class:`Ref`."""
        return self.write_object(lambda w: w.write(data), "bytes", label, upload=not local)

    def put_file(
        self,
        path: str | os.PathLike[str],
        label: str | None = None,
        *,
        local: bool = False,
        progress: Progress | None = None,
    ) -> Ref:
        """Copy a file into the store (hashing it in the same pass) and return its Ref."""
        return self.write_object(file_writer(path, progress), "bytes", label, upload=not local)

    def put_text(self, text: str, label: str | None = None, *, local: bool = False) -> Ref:
        """Store text as UTF-8 and return its Ref."""
        data = codecs.encode_text(text)
        return self.write_object(lambda w: w.write(data), "text", label, upload=not local)

    def put_json(self, obj: Any, label: str | None = None, *, local: bool = False) -> Ref:
        """Store ``obj`` as kachery-canonical JSON and return its Ref."""
        data = codecs.encode_json(obj)
        return self.write_object(lambda w: w.write(data), "json", label, upload=not local)

    def put_npy(self, array: Any, label: str | None = None, *, local: bool = False) -> Ref:
        """Store an array in ``.npy`` format and return its Ref."""
        return self.write_object(
            lambda w: codecs.write_npy(w, array), "npy", label, upload=not local
        )

    def put_pkl(self, obj: Any, label: str | None = None, *, local: bool = False) -> Ref:
        """Store ``obj`` as a protocol-4 pickle and return its Ref."""
        data = codecs.encode_pkl(obj)
        return self.write_object(lambda w: w.write(data), "pkl", label, upload=not local)

    def store_file(
        self,
        path: str | os.PathLike[str],
        label: str | None = None,
        *,
        local: bool = False,
        progress: Progress | None = None,
    ) -> str:
        """Store a file; return its ``sha1://`` URI."""
        return self.put_file(path, label, local=local, progress=progress).uri

    def store_text(self, text: str, label: str | None = None, *, local: bool = False) -> str:
        """Store text; return its URI."""
        return self.put_text(text, label, local=local).uri

    def store_json(self, obj: Any, label: str | None = None, *, local: bool = False) -> str:
        """Store JSON; return its URI."""
        return self.put_json(obj, label, local=local).uri

    def store_npy(self, array: Any, label: str | None = None, *, local: bool = False) -> str:
        """Store an array as npy; return its URI."""
        return self.put_npy(array, label, local=local).uri

    def store_pkl(self, obj: Any, label: str | None = None, *, local: bool = False) -> str:
        """Store a pickle; return its URI."""
        return self.put_pkl(obj, label, local=local).uri

    # ---------------------------------------------------------------- reading
    def _local_path(self, ref: Ref) -> Path | None:
        path = _layout.object_path(self.root, ref.sha1)
        return path if path.is_file() else None

    def _fetch(self, ref: Ref, progress: Progress | None = None) -> Path:
        return _transfer.download(self, ref, _transfer.zone_for(self, ref), progress)

    def _ensure_local(self, ref: Ref, *, verify: bool) -> Path:
        path = self._local_path(ref)
        if path is None:
            return self._fetch(ref)
        self.access_log.note(ref.sha1)
        return _transfer.verified(self, ref, path) if verify else path

    def exists(self, uri: str | Ref) -> bool:
        """Whether the object is in the local store or the zone."""
        ref = parse_uri(uri)
        if self._local_path(ref) is not None:
            return True
        zone = _transfer.zone_for(self, ref)
        return zone is not None and zone.has(ref.sha1)

    def load_file(
        self, uri: str | Ref, *, dest: str | os.PathLike[str] | None = None, verify: bool = False
    ) -> str:
        """Return a local path holding the object (fetched from the zone if needed).

        The path is inside the store: treat it as read-only. With ``dest`` the object is
        copied there and ``dest`` is returned.
        """
        ref = parse_uri(uri)
        path = self._ensure_local(ref, verify=verify)
        if dest is None:
            return str(path)
        shutil.copyfile(path, dest)
        return os.fspath(dest)

    def load_bytes(
        self,
        uri: str | Ref,
        start: int | None = None,
        end: int | None = None,
        *,
        verify: bool = False,
    ) -> bytes:
        """The object's bytes, or the slice ``[start, end)`` of them."""
        ref = parse_uri(uri)
        path = self._ensure_local(ref, verify=verify)
        if start is None and end is None:
            return path.read_bytes()
        size = path.stat().st_size
        lo = 0 if start is None else start
        hi = size if end is None else end
        if not 0 <= lo <= hi <= size:
            raise ValueError(f"byte range [{lo}, {hi}) is outside {ref.uri} of size {size}")
        with open(path, "rb") as f:
            f.seek(lo)
            return f.read(hi - lo)

    def load_text(self, uri: str | Ref, *, verify: bool = False) -> str:
        """Load a UTF-8 text object."""
        ref = parse_uri(uri)
        return codecs.decode_text(self.load_bytes(ref, verify=verify), ref.uri)

    def load_json(self, uri: str | Ref, *, verify: bool = False) -> Any:
        """Load a JSON object."""
        ref = parse_uri(uri)
        return codecs.decode_json(self.load_bytes(ref, verify=verify), ref.uri)

    def load_npy(
        self, uri: str | Ref, *, mmap_mode: str | None = None, verify: bool = False
    ) -> Any:
        """Load an ``.npy`` array; ``mmap_mode='r'`` memory-maps it read-only."""
        ref = parse_uri(uri)
        path = self._ensure_local(ref, verify=verify)
        return codecs.load_npy_file(path, ref.uri, mmap_mode)

    def load_pkl(self, uri: str | Ref, *, trusted: bool = False, verify: bool = False) -> Any:
        """Load a pickle. Restricted to safe types unless ``trusted=True`` (see
        :func:`kachery_flows.codecs.unpickle`, through which every pickle passes)."""
        ref = parse_uri(uri)
        data = self.load_bytes(ref, verify=verify)
        return codecs.unpickle(data, ref.sha1, ref.uri, trusted)

    def load(self, uri: str | Ref, codec: str = "bytes", **kwargs: Any) -> Any:
        """Load with a named codec (see :data:`kachery_flows.codecs.CODECS`): ``bytes``,
        ``text``, ``json``, ``npy`` or ``pkl``, through the ``load_<codec>`` method."""
        loader: Callable[..., Any] = getattr(self, f"load_{codecs.get_codec(codec).name}")
        return loader(uri, **kwargs)

    def info(self, uri: str | Ref) -> dict[str, Any]:
        """Where the object is and how big it is (no download)."""
        ref = parse_uri(uri)
        path = self._local_path(ref)
        return _transfer.locate(self, ref, path)

    # ------------------------------------------------------------ maintenance
    def iter_hashes(self) -> Iterator[str]:
        """Yield the hash of every object in the local store."""
        for sha1, _path, _stat in iter_objects(str(self.root)):
            yield sha1

    def iter_temp_files(self) -> Iterator[Path]:
        """Temp files left by writers: ours (``*.part``) and kachery-cloud's in shards."""
        return _verify.iter_temp_files(self.root)

    def verify(
        self,
        *,
        quarantine: bool = False,
        remove_temp: bool = False,
        temp_grace_seconds: float = 3600.0,
        progress: Progress | None = None,
    ) -> VerifyReport:
        """Re-hash every local object and look for orphan temp files.

        Corrupt objects are reported, and moved to :attr:`quarantine_dir` with
        ``quarantine=True`` (a later load fetches a good copy from the zone). Temp files
        older than ``temp_grace_seconds`` (so not a live writer's) are reported, and
        deleted with ``remove_temp=True``.
        """
        return _verify.verify(
            self.root,
            group_shared=self.group_shared,
            quarantine_corrupt=quarantine,
            remove_temp=remove_temp,
            temp_grace_seconds=temp_grace_seconds,
            progress=progress,
        )

    def quarantine(self, path: Path) -> Path:
        """Move the (corrupt) file ``path`` into :attr:`quarantine_dir`; return where it
        went. A later load of its object fetches a good copy from the zone."""
        return _verify.quarantine(self.root, path, group_shared=self.group_shared)


def _build_default(settings: Settings) -> Store:
    zone = open_zone(settings.zone) if settings.zone else None
    return Store(settings.root, zone=zone)


def get_default_store() -> Store:
    """The store built from the environment (``KACHERY_CLOUD_DIR``, ``KACHERY_ZONE``, ...).

    The environment is re-read on every call, so changing it (e.g. in tests) takes effect
    at once; the store is rebuilt only when the settings change.
    """
    return cast(Store, _default_store.default_store())


_default_store.register(_build_default)
