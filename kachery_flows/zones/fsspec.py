"""A zone on any fsspec file system: S3 (s3fs), MinIO and other S3-compatible stores,
GCS, Azure, ... Keys are ``[prefix/]sha1/aa/bb/cc/<hash>`` and ``[prefix/]refs/<name>``.

fsspec and the protocol's package (``s3fs`` for ``s3://``, the ``s3`` extra) are imported
when a zone is created, never at ``import kachery_flows``.

S3 credentials, region and endpoint come from the standard AWS sources (environment
variables such as ``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, ``AWS_ENDPOINT_URL``; the files
``~/.aws/config`` and ``~/.aws/credentials``), unless ``storage_options`` override them
(see :func:`s3_storage_options`). Retries are this package's (:class:`RetryPolicy`):
s3fs's and botocore's own retry loops are turned off for the zone's file system, so one
policy bounds the total time.
"""

from __future__ import annotations

import contextlib
import errno
import posixpath
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .._layout import object_key, sha1_of_key, staging_key
from .._retry import RetryPolicy
from ..errors import (
    CorruptObjectError,
    KacheryError,
    ObjectNotFoundError,
    ZoneError,
)
from ..hashing import sha1_of_file
from ..uri import redact_url
from ._fsspec_errors import translate
from ._options import check_options, retry_option
from ._registry import install_hint
from .base import MAX_REF_BYTES, Progress, Zone, decode_ref, ref_key

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from ..config import Settings

__all__ = ["FsspecZone", "s3_storage_options"]

T = TypeVar("T")

_S3_SHORTCUTS = ("endpoint_url", "profile", "region", "anon")
_OPTIONS = ("read_only", "retry", "storage_options", *_S3_SHORTCUTS)

# Object stores whose uploads become visible whole or not at all: a put goes straight to the
# object's key. Other file systems (memory, sftp, ...) may show a file while it is being
# written, so a put goes to a staging key first and is then moved into place.
_ATOMIC_UPLOAD_PROTOCOLS = frozenset(
    {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oci", "oss"}
)


def s3_storage_options(
    *,
    endpoint_url: str | None = None,
    profile: str | None = None,
    region: str | None = None,
    anon: bool | None = None,
) -> dict[str, Any]:
    """s3fs options for the common per-zone overrides of the AWS defaults.

    ``endpoint_url`` (e.g. a MinIO server), ``profile`` (a section of the AWS config
    files), ``region`` and ``anon`` (unsigned requests to a public bucket). Options left
    None keep the AWS default (environment variables, then config files).
    """
    options: dict[str, Any] = {}
    if endpoint_url is not None:
        options["endpoint_url"] = endpoint_url
    if profile is not None:
        options["profile"] = profile
    if region is not None:
        options["client_kwargs"] = {"region_name": region}
    if anon is not None:
        options["anon"] = anon
    return options


def _s3_defaults(options: dict[str, Any]) -> dict[str, Any]:
    merged = dict(options)
    # A zone sees objects appear from other writers: never answer from a stale listing.
    merged.setdefault("use_listings_cache", False)
    # Our RetryPolicy bounds the time; botocore's own retries would multiply it.
    config = dict(merged.get("config_kwargs") or {})
    config.setdefault("retries", {"total_max_attempts": 1, "mode": "standard"})
    merged["config_kwargs"] = config
    return merged


class FsspecZone(Zone):
    """A zone at ``url`` on an fsspec file system (``s3://bucket/prefix``, ``gs://...``).

    Parameters
    ----------
    url:
        Bucket (and optional prefix) URL understood by ``fsspec.url_to_fs``.
    storage_options:
        Passed to the file system (for S3 see :func:`s3_storage_options`).
    read_only:
        Refuse ``put``, ``delete`` and ``set_ref``.
    retry:
        Retry policy for transient failures (default: :meth:`RetryPolicy.from_settings`).
    """

    def __init__(
        self,
        url: str,
        *,
        storage_options: Mapping[str, Any] | None = None,
        read_only: bool = False,
        retry: RetryPolicy | None = None,
    ) -> None:
        protocol = url.split("://", 1)[0] if "://" in url else "file"
        try:
            import fsspec
        except ImportError as exc:  # pragma: no cover - fsspec comes with the s3 extra
            raise ZoneError(
                f"cannot open zone {redact_url(url)}: fsspec is not installed "
                f"({install_hint(protocol) or install_hint('s3')})"
            ) from exc
        self._args = (url, dict(storage_options or {}), read_only, retry)
        options = dict(storage_options or {})
        if protocol in ("s3", "s3a"):
            options = _s3_defaults(options)
        options.setdefault("skip_instance_cache", True)
        try:
            fs, root = fsspec.core.url_to_fs(url, **options)
        except ImportError as exc:
            hint = install_hint(protocol)
            extra = f" ({hint})" if hint else ""
            raise ZoneError(redact_url(f"cannot open zone {url}: {exc}{extra}")) from None
        except (ValueError, TypeError) as exc:
            raise ZoneError(redact_url(f"cannot open zone {url}: {exc}")) from None
        if protocol in ("s3", "s3a"):
            fs.retries = 1  # s3fs's own retry loop; ours is in charge
        self.fs: AbstractFileSystem = fs
        self._atomic_upload = protocol in _ATOMIC_UPLOAD_PROTOCOLS
        self._in_memory = protocol == "memory"
        self.root = root.rstrip("/")
        self.name = redact_url(url.rstrip("/"))
        self.writable = not read_only
        self.retry = retry if retry is not None else RetryPolicy.from_settings()

    @classmethod
    def from_config(cls, url: str, options: Mapping[str, Any], settings: Settings) -> FsspecZone:
        """Keys: ``read_only``, ``retry``, ``storage_options`` (passed to the file system)
        and the S3 shortcuts ``endpoint_url``, ``profile``, ``region``, ``anon`` (see
        :func:`s3_storage_options`)."""
        check_options(options, _OPTIONS, "fsspec")
        retry = retry_option(options, settings)
        storage_options = dict(options.get("storage_options") or {})
        shortcuts = {k: options[k] for k in _S3_SHORTCUTS if k in options}
        storage_options.update(s3_storage_options(**shortcuts))
        return cls(
            url,
            storage_options=storage_options,
            read_only=bool(options.get("read_only", False)),
            retry=retry,
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from the constructor arguments, so the file system gets the zone's
        # settings again (e.g. s3fs's retries) in another process.
        url, options, read_only, retry = self._args
        return (_rebuild, (url, options, read_only, retry))

    # ------------------------------------------------------------------ helpers
    def _key(self, relative: str) -> str:
        return posixpath.join(self.root, relative) if self.root else relative

    def _call(self, what: str, operation: Callable[[], T]) -> T:
        def attempt() -> T:
            try:
                return operation()
            except KacheryError:
                raise
            except Exception as exc:
                translated = translate(exc, f"zone {self.name}: {what}")
                if translated is None:
                    raise
                raise translated from exc

        return self.retry.call(attempt)

    def _callback(self, progress: Progress | None) -> Any:
        import fsspec.callbacks

        if progress is None:
            return fsspec.callbacks.DEFAULT_CALLBACK
        return _progress_callback_class()(progress)

    # --------------------------------------------------------------- interface
    def has(self, sha1: str) -> bool:
        key = self._key(object_key(sha1))

        def probe() -> bool:
            try:
                info: dict[str, Any] = self.fs.info(key)
            except FileNotFoundError:
                return False
            return info.get("type") == "file"

        return self._call(f"looking up sha1://{sha1}", probe)

    def holds(self, sha1: str, size: int) -> bool:
        """The object is a file of ``size`` bytes (one ``info`` request, not retried)."""
        try:
            info: dict[str, Any] = self.fs.info(self._key(object_key(sha1)))
        except Exception as exc:
            if isinstance(exc, KacheryError) or translate(exc, self.name) is not None:
                return False
            raise
        return bool(info.get("type") == "file" and info.get("size") == size)

    def get(self, sha1: str, dest: Path, progress: Progress | None = None) -> None:
        key = self._key(object_key(sha1))

        def download() -> None:
            if self._in_memory:
                # fsspec's memory file system hands every reader the same file object, so
                # concurrent streaming reads would share one position: copy the bytes out.
                data = self.fs.cat_file(key)
                dest.write_bytes(data)
                if progress is not None:
                    progress(len(data))
            else:
                self.fs.get_file(key, str(dest), callback=self._callback(progress))

        try:
            self._call(f"downloading sha1://{sha1}", download)
        except ObjectNotFoundError:
            raise ObjectNotFoundError(
                f"sha1://{sha1} is not in zone {self.name}", uri=f"sha1://{sha1}"
            ) from None

    def put(self, src: Path, sha1: str, progress: Progress | None = None) -> None:
        self._require_writable(f"store sha1://{sha1}")
        if self.has(sha1):
            return
        actual = sha1_of_file(src)
        if actual != sha1:
            raise CorruptObjectError(
                f"refusing to upload {src} as sha1://{sha1} to zone {self.name}: its bytes "
                f"hash to {actual}",
                uri=f"sha1://{sha1}",
                actual_sha1=actual,
            )
        key = self._key(object_key(sha1))
        if self._atomic_upload:
            self._call(
                f"uploading sha1://{sha1}",
                lambda: self.fs.put_file(str(src), key, callback=self._callback(progress)),
            )
            return
        staging = self._key(f"{staging_key()}/{uuid.uuid4().hex}.part")

        def staged_upload() -> None:
            try:
                self.fs.put_file(str(src), staging, callback=self._callback(progress))
                self.fs.mv(staging, key)
            finally:
                with contextlib.suppress(Exception):
                    self._remove(staging)

        self._call(f"uploading sha1://{sha1}", staged_upload)

    def iter_hashes(self) -> Iterator[str]:
        base = self._key("sha1")
        prefix = self._key("")

        def find() -> list[str]:
            try:
                return list(self.fs.find(base))
            except FileNotFoundError:
                return []

        for path in self._call("listing objects", find):
            sha1 = sha1_of_key(path[len(prefix) :]) if path.startswith(prefix) else None
            if sha1 is not None:
                yield sha1

    def delete(self, sha1: str) -> None:
        self._require_writable(f"delete sha1://{sha1}")
        key = self._key(object_key(sha1))
        self._call(f"deleting sha1://{sha1}", lambda: self._remove(key))

    def _remove(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(key)

    def get_ref(self, name: str) -> str | None:
        key = self._key(ref_key(name))

        def read() -> bytes | None:
            try:
                data: bytes = self.fs.cat_file(key, start=0, end=MAX_REF_BYTES + 1)
            except FileNotFoundError:
                return None
            except OSError as exc:
                # S3 answers a range request on an empty object with 416 (EINVAL here)
                if exc.errno != errno.EINVAL or self.fs.size(key) != 0:
                    raise
                return b""
            return data

        data = self._call(f"reading ref {name!r}", read)
        if data is None:
            return None
        return decode_ref(data, self.name, name)

    def set_ref(self, name: str, value: str | None) -> None:
        key = self._key(ref_key(name))
        self._require_writable(f"set ref {name!r}")
        if value is None:
            self._call(f"removing ref {name!r}", lambda: self._remove(key))
            return
        data = value.encode("utf-8")
        self._call(f"writing ref {name!r}", lambda: self.fs.pipe_file(key, data))


def _rebuild(
    url: str, options: dict[str, Any], read_only: bool, retry: RetryPolicy | None
) -> FsspecZone:
    return FsspecZone(url, storage_options=options, read_only=read_only, retry=retry)


_callback_class: type[Any] | None = None


def _progress_callback_class() -> type[Any]:
    """An fsspec Callback that reports byte increments to a ``progress`` function."""
    global _callback_class
    if _callback_class is None:
        from fsspec.callbacks import Callback

        class _ProgressCallback(Callback):  # type: ignore[misc]
            def __init__(self, progress: Progress) -> None:
                super().__init__()
                self._progress = progress
                self._reported = 0

            def call(self, *args: Any, **kwargs: Any) -> None:
                value = int(self.value)
                if value > self._reported:
                    self._progress(value - self._reported)
                    self._reported = value

        _callback_class = _ProgressCallback
    return _callback_class
