"""The kachery network zone: objects published on the hosted kachery service.

kachery-cloud and figurl users hold URIs whose bytes live on the public kachery network
(kachery 2's service, ``https://kachery.vercel.app``; ``KACHERY_BASE_URL`` overrides it).
This zone speaks its HTTP API:

* read: ``POST /api/findFile`` ``{"type": "findFileRequest", "hashAlg": "sha1", "hash",
  "zoneName"}`` answers ``found`` and a signed bucket URL, which is then fetched with a
  plain GET. Public zones need no account.
* write: ``POST /api/initiateFileUpload`` (with a proof-of-work ``workToken`` and
  ``Authorization: Bearer $KACHERY_API_KEY``) answers ``alreadyExists`` or a signed upload
  URL; the bytes are PUT there, then ``POST /api/finalizeFileUpload`` records the upload
  (:mod:`._knet_upload`).

The protocol's pieces (work tokens, answers, what an error means) are in
:mod:`._knet_protocol`, the legacy gateway's signatures in :mod:`._kachery_gateway`.

When kachery 2 does not know an object and kachery-cloud client keys are present
(``$KACHERY_CLOUD_DIR/private.pem``) with the optional ``cryptography`` package, the
legacy kachery-cloud gateway is asked too (an Ed25519-signed ``findFile``).

The zone only moves bytes: :class:`kachery_flows.store.Store` hashes every download in a
temp file before it enters the local cache. The service has no listing, deletion or
mutable refs; the capability flags say so and those methods raise :class:`ZoneError`.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import requests

from .._retry import RetryPolicy
from ..config import default_root, load_network_settings
from ..errors import ObjectNotFoundError, ZoneError, ZonePermissionError, ZoneUnavailableError
from ..uri import Ref, redact_url
from ._bounded import MAX_ANSWER_BYTES, json_capped
from ._kachery_gateway import LegacyGateway, find_file_envelope, load_client_keys, signing_available
from ._knet_protocol import (
    KEY_HELP,
    WORK_TOKEN_DIFFICULTY,
    Found,
    Missing,
    UnknownZoneError,
    UrlRefused,
    check_work_token,
    error_message,
    found_in,
    http_failure,
    make_work_token,
    transport_errors,
    write_body,
)
from ._knet_upload import publish
from ._options import check_options
from ._sessions import ThreadSessions
from .base import Progress, Zone

if TYPE_CHECKING:
    from ..config import Settings

# The work-token functions are part of this module's public API (kachery 2 compatibility
# tests use them); they are defined with the rest of the protocol in _knet_protocol.
__all__ = [
    "WORK_TOKEN_DIFFICULTY",
    "KacheryNetworkZone",
    "check_work_token",
    "make_work_token",
    "network_zone_for",
]


class KacheryNetworkZone(ThreadSessions, Zone):
    """One zone of the kachery network (``kachery:<zone>``, e.g. ``kachery:default``).

    Parameters
    ----------
    zone_name:
        The kachery zone (``default``, ``scratch``, a lab's zone, ...).
    base_url:
        The kachery 2 service; default ``$KACHERY_BASE_URL`` or the public service.
    api_key:
        The kachery API key; default ``$KACHERY_API_KEY``, read at each request so a key
        exported after the zone was opened is used. Needed to publish (except to
        ``scratch``) and to read non-public zones.
    allow_public_zones:
        Send kachery 2.0.3's ``allowPublicZones`` flag on uploads to ``default`` and
        ``scratch``; default ``KACHERY_ALLOW_PUBLIC_ZONES=1``.
    legacy_gateway:
        kachery-cloud's gateway and client keys, asked when kachery 2 does not know an
        object; :meth:`from_env` sets it up when client keys exist.
    retry:
        Retries of transient failures (connection errors, timeouts, HTTP 5xx); default
        from ``KACHERY_NETWORK_RETRY_SECONDS`` (60 s in total).
    timeout:
        ``(connect, read)`` timeouts of each HTTP request, in seconds.
    """

    writable = True
    listable = False
    supports_refs = False
    deletable = False

    def __init__(
        self,
        zone_name: str = "default",
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        allow_public_zones: bool | None = None,
        legacy_gateway: LegacyGateway | None = None,
        retry: RetryPolicy | None = None,
        timeout: tuple[float, float] = (10.0, 60.0),
    ) -> None:
        problem = _zone_name_problem(zone_name)
        if problem is not None:
            raise ZoneError(f"invalid kachery zone name {zone_name!r}: {problem}")
        settings = load_network_settings()
        self.zone_name = zone_name
        self.base_url = (base_url or settings.base_url).rstrip("/")
        self._api_key = api_key
        self.allow_public_zones = (
            settings.allow_public_zones if allow_public_zones is None else allow_public_zones
        )
        self.legacy_gateway = legacy_gateway
        self.retry = (
            retry
            if retry is not None
            else RetryPolicy(
                total_seconds=settings.retry_seconds,
                budget_variable="KACHERY_NETWORK_RETRY_SECONDS",
            )
        )
        self.timeout = timeout
        self.name = f"kachery:{zone_name} ({redact_url(self.base_url)})"
        self._init_sessions()

    @classmethod
    def from_env(cls, zone_name: str) -> KacheryNetworkZone:
        """The zone configured by the environment, with the legacy gateway when
        kachery-cloud client keys and the ``cryptography`` package are available."""
        settings = load_network_settings()
        gateway = None
        if signing_available():
            keys = load_client_keys(default_root(), settings)
            if keys is not None:
                gateway = LegacyGateway(settings.gateway_url, keys)
        return cls(zone_name, legacy_gateway=gateway)

    @classmethod
    def from_spec(cls, spec: str) -> KacheryNetworkZone:
        """Open ``kachery:<zone name>`` (the ``KACHERY_ZONE`` form)."""
        name = spec[len("kachery:") :] if spec.startswith("kachery:") else ""
        if not name:
            raise ZoneError(
                f"cannot open zone {spec!r}: expected kachery:<zone name>, e.g. kachery:default"
            )
        return cls.from_env(name)

    @classmethod
    def from_config(
        cls, url: str, options: Mapping[str, Any], settings: Settings
    ) -> KacheryNetworkZone:
        """``kachery:<zone name>``, configured by the environment (:meth:`from_env`); no
        ``zones.json`` keys besides ``url`` and ``trust_pickles``."""
        check_options(options, (), "kachery network")
        return cls.from_spec(url)

    @property
    def api_key(self) -> str | None:
        """The API key sent as a bearer token (explicit, else ``$KACHERY_API_KEY``)."""
        return self._api_key or load_network_settings().api_key

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = self.api_key
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _permission_hint(self) -> str:
        if self.api_key:
            return (
                f"the API key in KACHERY_API_KEY was refused or has no access to zone "
                f"{self.zone_name!r}: check the key, or ask the zone's owner for access"
            )
        return f"zone {self.zone_name!r} may need an account. {KEY_HELP}"

    def _http_failure(self, what: str, resp: requests.Response) -> Exception:
        return http_failure(what, resp, self._permission_hint())

    def _post(self, url: str, body: dict[str, Any], what: str, *, signed: bool = False) -> Any:
        """One POST of a JSON body (``what`` names it in errors); the JSON object answered.

        ``signed`` requests (legacy gateway) carry their credentials in the body.
        """
        headers = {"Content-Type": "application/json"} if signed else self._headers()
        with transport_errors(what):
            resp = self._session().post(
                url,
                data=json.dumps(body).encode(),
                headers=headers,
                timeout=self.timeout,
                stream=True,
            )
        with resp:
            if resp.status_code != 200:
                raise self._http_failure(what, resp)
            with transport_errors(what):
                data = json_capped(resp)
        if not isinstance(data, dict):
            raise ZoneError(
                f"{what}: the answer is not a JSON object of at most {MAX_ANSWER_BYTES} bytes"
            )
        return data

    def _api(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST to the kachery 2 API, retrying transient failures."""
        what = f"{endpoint} at {self.name}"
        url = f"{self.base_url}/api/{endpoint}"
        result: dict[str, Any] = self.retry.call(lambda: self._post(url, body, what))
        return result

    # ------------------------------------------------------------------ read
    def _find(self, sha1: str) -> Found | Missing:
        body = {
            "type": "findFileRequest",
            "hashAlg": "sha1",
            "hash": sha1,
            "zoneName": self.zone_name,
        }
        try:
            data = self._api("findFile", body)
        except UnknownZoneError:
            if self.legacy_gateway is None:
                raise
            return self._find_via_gateway(sha1, self.legacy_gateway)
        found = data.get("found")
        if found is True:
            return found_in(data, f"findFile at {self.name}", self.name)
        if found is not False:
            raise ZoneError(f"findFile at {self.name}: unexpected answer {data!r:.300}")
        if self.legacy_gateway is None:
            return Missing(f"not in kachery zone {self.name}")
        return self._find_via_gateway(sha1, self.legacy_gateway)

    def _find_via_gateway(self, sha1: str, gateway: LegacyGateway) -> Found | Missing:
        where = f"kachery-cloud gateway {gateway.url} (zone {self.zone_name!r})"
        url = f"{gateway.url}/api/gateway"

        def attempt() -> Any:
            envelope = find_file_envelope(
                sha1, self.zone_name, gateway.keys, int(time.time() * 1000)
            )
            return self._post(url, envelope, f"findFile at {where}", signed=True)

        try:
            data = self.retry.call(attempt)
        except ZoneUnavailableError:
            raise
        except ZoneError as exc:
            return Missing(f"not in kachery zone {self.name}, and the {where} refused: {exc}")
        if data.get("found") is True:
            return found_in(data, f"findFile at {where}", where)
        return Missing(f"not in kachery zone {self.name} nor the {where}")

    def has(self, sha1: str) -> bool:
        return isinstance(self._find(sha1), Found)

    def holds(self, sha1: str, size: int) -> bool:
        """``findFile`` finds the object and announces ``size`` bytes (or no size)."""
        try:
            found = self._find(sha1)
        except ZoneError:
            return False
        return isinstance(found, Found) and found.size in (None, size)

    def _located(self, sha1: str) -> Found:
        found = self._find(sha1)
        if isinstance(found, Found):
            return found
        raise ObjectNotFoundError(
            f"sha1://{sha1} is {found.reason}", uri=f"sha1://{sha1}", detail=found.reason
        )

    def get(self, sha1: str, dest: Path, progress: Progress | None = None) -> None:
        found = self._located(sha1)
        refreshed = False

        def attempt() -> None:
            nonlocal found, refreshed
            try:
                self._download(found, dest, sha1, progress)
            except UrlRefused as exc:
                if refreshed:
                    raise ZonePermissionError(
                        f"the bucket behind {found.source} refused the download of "
                        f"sha1://{sha1} twice: {exc}"
                    ) from None
                refreshed = True
                found = self._located(sha1)
                raise ZoneUnavailableError(
                    f"signed URL refused ({exc}); asked for a fresh one"
                ) from None

        self.retry.call(attempt)

    def _download(
        self, found: Found, dest: Path, sha1: str, progress: Progress | None = None
    ) -> None:
        what = f"download from {found.source}"
        with transport_errors(what):
            resp = self._session().get(found.url, stream=True, timeout=self.timeout)
        with resp:
            status = resp.status_code
            if status in (401, 403):
                raise UrlRefused(f"HTTP {status}: {error_message(resp)[:200]}")
            if status == 404:
                missing = f"listed by {found.source} but its bucket has no such object (HTTP 404)"
                raise ObjectNotFoundError(
                    f"sha1://{sha1} is {missing}",
                    uri=f"sha1://{sha1}",
                    detail=missing,
                )
            if status != 200:
                raise self._http_failure(what, resp)
            written = write_body(resp, dest, found.size, what, progress)
        if found.size is not None and written < found.size:
            raise ZoneUnavailableError(
                f"{what}: the body ended after {written} of {found.size} bytes"
            )

    # ----------------------------------------------------------------- write
    def put(self, src: Path, sha1: str, progress: Progress | None = None) -> None:
        publish(self, src, sha1)

    # ------------------------------------------------------- not supported
    def _unsupported(self, operation: str) -> NoReturn:
        raise ZoneError(
            f"zone {self.name} cannot {operation}: the kachery network has no such "
            "operation (check the zone's listable / deletable / supports_refs flags)"
        )

    def iter_hashes(self) -> Iterator[str]:
        self._unsupported("list its objects")

    def delete(self, sha1: str) -> None:
        self._unsupported("delete objects")

    def get_ref(self, name: str) -> str | None:
        self._unsupported("hold mutable refs")

    def set_ref(self, name: str, value: str | None) -> None:
        self._unsupported("hold mutable refs")


def _zone_name_problem(zone_name: str) -> str | None:
    try:  # the same rules as the zone of a kachery: URI
        Ref(hashlib.sha1(b"").hexdigest(), zone=zone_name)
    except ValueError as exc:
        return str(exc)
    return None


_zones_lock = threading.Lock()
_zones: dict[tuple[str, ...], KacheryNetworkZone] = {}


def network_zone_for(zone_name: str, configured: Zone | None) -> KacheryNetworkZone:
    """The zone a ``kachery:<zone_name>:sha1:...`` URI is fetched through.

    That is ``configured`` when it is already this kachery zone, else one built from the
    environment (kept per zone name and settings, so sessions are reused).
    """
    if isinstance(configured, KacheryNetworkZone) and configured.zone_name == zone_name:
        return configured
    settings = load_network_settings()
    key = (
        zone_name,
        settings.base_url,
        settings.gateway_url,
        str(default_root()),
        str(settings.client_id),
        str(settings.retry_seconds),
        str(settings.allow_public_zones),
    )
    with _zones_lock:
        zone = _zones.get(key)
        if zone is None:
            zone = KacheryNetworkZone.from_env(zone_name)
            _zones[key] = zone
        return zone
