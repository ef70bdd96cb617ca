"""A read-only zone served over HTTP(S): a web server or CDN in front of a zone directory
or bucket. Objects are fetched from ``<base>/sha1/aa/bb/cc/<hash>`` and refs from
``<base>/refs/<name>``.

The server is treated as untrusted transport: every byte is hashed by the store before it
enters the cache. Status codes map to typed errors: 404/410 ``ObjectNotFoundError``,
401/403 ``ZonePermissionError``, 408/425/429/5xx and connection errors, timeouts and
bodies cut short are transient (retried by the zone's :class:`RetryPolicy`, then
``ZoneUnavailableError``), anything else ``ZoneError``.

A transfer slower than ``min_speed`` (default 1 KiB/s, averaged over 60 s) is cut off as
transient: a server that drips bytes just fast enough to dodge the read timeout cannot hold
a download forever, and the retry policy's time budget bounds the attempts.

Redirects are followed (at most 5) only within the base URL's origin (scheme, host and
port) or to hosts listed in ``allowed_redirect_hosts``, and never from https to http; any
other redirect raises ``ZoneError`` naming the target, instead of silently sending
requests (and headers) elsewhere. Custom headers are sent to the base URL's origin only.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
import urllib3

from .._layout import object_key
from .._retry import RetryPolicy, transport_reason
from ..errors import ObjectNotFoundError, ZoneError, ZonePermissionError, ZoneUnavailableError
from ..uri import redact_url
from ._options import ZoneConfigError, check_options, retry_option
from ._sessions import ThreadSessions
from .base import MAX_REF_BYTES, Progress, Zone, decode_ref, ref_key

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["HttpZone"]

_OPTIONS = (
    "read_only",
    "retry",
    "headers",
    "timeout",
    "allowed_redirect_hosts",
    "min_speed",
    "plain_http_refs",
)

_CHUNK = 1024 * 1024
_MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_TRANSIENT_STATUS = frozenset({408, 425, 429})
_TRANSIENT_EXC = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


def _chunks(response: requests.Response) -> Iterator[bytes]:
    """The body as it arrives: ``read1`` returns whatever bytes are there (up to 1 MiB),
    where ``iter_content`` waits for whole chunks, so a slow transfer is seen as slow."""
    read1 = getattr(response.raw, "read1", None)
    if read1 is None:  # urllib3 < 2
        yield from response.iter_content(_CHUNK)
        return
    while chunk := read1(_CHUNK, decode_content=True):
        yield chunk


class _SpeedCheck:
    """Whether a transfer keeps at least ``rate`` bytes per second over ``window`` s."""

    def __init__(self, rate: float, window: float) -> None:
        self.rate, self.window = rate, window
        self._since = time.monotonic()
        self._bytes_then = 0

    def check(self, received: int) -> str | None:
        """None while fast enough, else a description of the shortfall."""
        now = time.monotonic()
        span = now - self._since
        if span < self.window:
            return None
        got = received - self._bytes_then
        if got < self.rate * span:
            return (
                f"{got} bytes in the last {span:.1f} s, below the zone's minimum of "
                f"{self.rate:g} bytes/s (min_speed)"
            )
        self._since, self._bytes_then = now, received
        return None


def _public(url: str) -> str:
    """``url`` without the ``user:password@`` part, for messages."""
    return redact_url(url)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


class HttpZone(ThreadSessions, Zone):
    """A read-only zone at an HTTP(S) base URL.

    Parameters
    ----------
    base_url:
        ``http://`` or ``https://`` URL of the zone's root (holding ``sha1/``).
    headers:
        Extra request headers (e.g. ``Authorization``), sent to the base URL's origin only.
    timeout:
        ``(connect, read)`` timeouts in seconds; the read timeout bounds each wait for
        data, not the whole transfer.
    retry:
        Retry policy for transient failures (default: :meth:`RetryPolicy.from_settings`).
    allowed_redirect_hosts:
        Other host names redirects may lead to (e.g. a CDN or presigned-URL host).
    min_speed:
        ``(bytes_per_second, seconds)``: a download that receives less than this over any
        span of that many seconds is abandoned (and retried like a timeout).
    plain_http_refs:
        Let memo entries (refs) read from a plain ``http://`` zone decide memo hits. Off by
        default: anyone on the network path can answer for such a zone, and while objects
        are verified by hash, a ref is not (see ``SECURITY.md``). ``https://`` zones'
        refs are always read.
    """

    writable = False
    listable = False

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: tuple[float, float] = (10.0, 60.0),
        retry: RetryPolicy | None = None,
        allowed_redirect_hosts: Collection[str] = (),
        min_speed: tuple[float, float] = (1024.0, 60.0),
        plain_http_refs: bool = False,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ZoneError(f"not an http(s) zone URL: {_public(base_url)!r}")
        if parts.query or parts.fragment:
            raise ZoneError(f"zone URL {_public(base_url)!r} must not have a query or fragment")
        self.memo_refs = parts.scheme == "https" or plain_http_refs
        self.base_url = base_url.rstrip("/")
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        self.name = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.retry = retry if retry is not None else RetryPolicy.from_settings()
        self.allowed_redirect_hosts = frozenset(h.lower() for h in allowed_redirect_hosts)
        rate, window = min_speed
        if not (rate >= 0 and window > 0):
            raise ZoneError(
                f"min_speed must be (bytes_per_second >= 0, seconds > 0), not {min_speed!r}"
            )
        self.min_speed = (float(rate), float(window))
        self._init_sessions()

    @classmethod
    def from_config(cls, url: str, options: Mapping[str, Any], settings: Settings) -> HttpZone:
        """Keys: the constructor's (``headers``, ``timeout`` as seconds or ``[connect,
        read]``, ``allowed_redirect_hosts``, ``min_speed``, ``plain_http_refs``,
        ``retry``) and ``read_only``, which can only be true."""
        check_options(options, _OPTIONS, "http")
        retry = retry_option(options, settings)
        timeout = options.get("timeout", (10.0, 60.0))
        if isinstance(timeout, (int, float)):
            timeout = (float(timeout), float(timeout))
        if "read_only" in options and not options["read_only"]:
            raise ZoneConfigError("an http(s) zone is always read-only")
        min_speed = options.get("min_speed", (1024.0, 60.0))
        if not (isinstance(min_speed, (list, tuple)) and len(min_speed) == 2):
            raise ZoneConfigError("'min_speed' must be [bytes_per_second, seconds]")
        return cls(
            url,
            headers=dict(options.get("headers") or {}),
            timeout=(float(timeout[0]), float(timeout[1])),
            retry=retry,
            allowed_redirect_hosts=list(options.get("allowed_redirect_hosts") or ()),
            min_speed=(float(min_speed[0]), float(min_speed[1])),
            plain_http_refs=options.get("plain_http_refs", False) is True,
        )

    # ------------------------------------------------------------------ helpers
    def _url(self, key: str) -> str:
        return f"{self.base_url}/{key}"

    def _check_redirect(self, source: str, target: str) -> None:
        scheme, host, _port = _origin(target)
        if _origin(target) == _origin(self.base_url):
            return
        no_downgrade = scheme == "https" or (scheme == "http" and _origin(source)[0] == "http")
        if no_downgrade and host in self.allowed_redirect_hosts:
            return
        raise ZoneError(
            f"zone {self.name} redirected {_public(source)} to {_public(target)}, which is "
            "outside the zone's origin; refusing to follow. If that host is trusted, add it "
            "to the zone's allowed_redirect_hosts."
        )

    def _request(self, method: str, key: str, *, stream: bool) -> requests.Response:
        """One request with checked redirects; transport errors become typed errors."""
        url = self._url(key)
        base_origin = _origin(self.base_url)
        for _hop in range(_MAX_REDIRECTS + 1):
            headers = self.headers if _origin(url) == base_origin else {}
            try:
                response = self._session().request(
                    method,
                    url,
                    headers=headers,
                    stream=stream,
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except _TRANSIENT_EXC as exc:
                raise ZoneUnavailableError(
                    f"zone {self.name}: {method} {_public(url)} failed: {transport_reason(exc)}"
                ) from exc
            except requests.RequestException as exc:
                raise ZoneError(f"zone {self.name}: {method} {_public(url)} failed: {exc}") from exc
            location = response.headers.get("Location")
            if response.status_code not in _REDIRECTS or not location:
                return response
            response.close()
            target = urljoin(url, location)
            self._check_redirect(url, target)
            url = target
        raise ZoneError(f"zone {self.name}: more than {_MAX_REDIRECTS} redirects for {key}")

    def _fail(self, response: requests.Response, what: str) -> NoReturn:
        """Raise the typed error for a non-2xx, non-404 response."""
        status = response.status_code
        text = (
            f"zone {self.name}: {what}: HTTP {status} {response.reason} ({_public(response.url)})"
        )
        response.close()
        if status in (401, 403):
            raise ZonePermissionError(
                f"{text}; check the zone's credentials (headers) and the server's access rules"
            )
        if status >= 500 or status in _TRANSIENT_STATUS:
            raise ZoneUnavailableError(text)
        raise ZoneError(text)

    # --------------------------------------------------------------- interface
    def has(self, sha1: str) -> bool:
        key = object_key(sha1)

        def probe() -> bool:
            response = self._request("HEAD", key, stream=False)
            if response.status_code in (405, 501):  # no HEAD support: ask for the body
                response = self._request("GET", key, stream=True)
            response.close()
            if response.status_code in (404, 410):
                return False
            if 200 <= response.status_code < 300:
                return True
            self._fail(response, f"looking up sha1://{sha1}")

        return self.retry.call(probe)

    def get(self, sha1: str, dest: Path, progress: Progress | None = None) -> None:
        key = object_key(sha1)

        def download() -> None:
            response = self._request("GET", key, stream=True)
            with response:
                if response.status_code in (404, 410):
                    raise ObjectNotFoundError(
                        f"sha1://{sha1} is not in zone {self.name}", uri=f"sha1://{sha1}"
                    )
                if not 200 <= response.status_code < 300:
                    self._fail(response, f"downloading sha1://{sha1}")
                declared = response.headers.get("Content-Length")
                encoded = response.headers.get("Content-Encoding", "identity") != "identity"
                speed = _SpeedCheck(*self.min_speed)
                received = 0
                try:
                    with open(dest, "wb") as out:
                        for chunk in _chunks(response):
                            out.write(chunk)
                            received += len(chunk)
                            if progress is not None:
                                progress(len(chunk))
                            if (too_slow := speed.check(received)) is not None:
                                raise ZoneUnavailableError(
                                    f"zone {self.name}: downloading sha1://{sha1} is too slow: "
                                    f"{too_slow}"
                                )
                except (*_TRANSIENT_EXC, urllib3.exceptions.HTTPError) as exc:
                    raise ZoneUnavailableError(
                        f"zone {self.name}: downloading sha1://{sha1} broke off after "
                        f"{received} bytes: {transport_reason(exc)}"
                    ) from exc
                short = declared is not None and declared.isdigit() and received != int(declared)
                if short and not encoded:
                    raise ZoneUnavailableError(
                        f"zone {self.name}: downloading sha1://{sha1} gave {received} "
                        f"of the {declared} bytes announced"
                    )

        self.retry.call(download)

    def put(self, src: Path, sha1: str, progress: Progress | None = None) -> None:
        self._require_writable(f"store sha1://{sha1}")

    def iter_hashes(self) -> Iterator[str]:
        self._require_listable()
        yield from ()

    def delete(self, sha1: str) -> None:
        self._require_writable(f"delete sha1://{sha1}")

    def get_ref(self, name: str) -> str | None:
        key = ref_key(name)

        def read() -> str | None:
            response = self._request("GET", key, stream=True)
            with response:
                if response.status_code in (404, 410):
                    return None
                if not 200 <= response.status_code < 300:
                    self._fail(response, f"reading ref {name!r}")
                data = bytearray()
                try:
                    for chunk in _chunks(response):
                        data += chunk
                        if len(data) > MAX_REF_BYTES:
                            break
                except (*_TRANSIENT_EXC, urllib3.exceptions.HTTPError) as exc:
                    raise ZoneUnavailableError(
                        f"zone {self.name}: reading ref {name!r} broke off: {exc}"
                    ) from exc
            return decode_ref(bytes(data), self.name, name)

        return self.retry.call(read)

    def set_ref(self, name: str, value: str | None) -> None:
        ref_key(name)
        self._require_writable(f"set ref {name!r}")
