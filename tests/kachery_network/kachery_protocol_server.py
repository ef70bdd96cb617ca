"""A local, protocol-faithful stand-in for the kachery network (tests only).

It serves on 127.0.0.1 and implements, from the compatibility notes in
``shared/reference/kachery.md`` §4:

* kachery 2's API: ``POST /api/findFile``, ``/api/initiateFileUpload`` and
  ``/api/finalizeFileUpload`` with strictly validated JSON bodies (exact key sets and
  types), the 13-bit proof-of-work ``workToken``, ``Authorization: Bearer <API key>``,
  the per-zone rules (public download, upload by owner / members / ``scratch``), and
  kachery's error shapes (``{"error": ...}`` with 400/401/500).
* kachery-cloud's legacy gateway: ``POST /api/gateway`` with the signed envelope
  ``{payload, fromClientId, signature}``; the Ed25519 signature over the SHA-1 of the
  canonical payload JSON and the +-125 s timestamp window are checked.
* a bucket: objects under ``[<zone dir>/]sha1/aa/bb/cc/<hash>``, reached only through
  HMAC-signed, expiring URLs pointing back at this server (403 when expired or forged).

It can misbehave on demand (:meth:`KacheryProtocolServer.inject`): any HTTP status,
dropped connections, slow answers, wrong or truncated or over-long bytes, and signed URLs
that are already expired. Every request is logged for assertions.

The checks are written independently of kachery_flows (hashlib, json, hmac and
cryptography only), so a client bug cannot hide behind a shared helper.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_HASH = re.compile(r"^[0-9a-f]{40}$")
_TOKEN = re.compile(r"^[0-9a-f]{16}$")
FIND_KEYS = {"type", "hashAlg", "hash", "zoneName"}
INITIATE_KEYS = {"type", "size", "hashAlg", "hash", "zoneName", "workToken"}
FINALIZE_KEYS = {"type", "objectKey", "hashAlg", "hash", "zoneName", "size"}
GATEWAY_FIND_KEYS = {"type", "hashAlg", "hash", "zone", "timestamp"}


def work_token_ok(sha1: str, token: str) -> bool:
    """kachery 2's check: ``sha1(hash + token)`` as 160 bits starts with 13 zeros."""
    bits = bin(int(hashlib.sha1((sha1 + token).encode()).hexdigest(), 16))[2:].zfill(160)
    return bits.startswith("0" * 13)


def bucket_key(directory: str, sha1: str) -> str:
    """The object key: ``[dir/]sha1/aa/bb/cc/<hash>`` (kachery's joinKeys)."""
    key = f"sha1/{sha1[0:2]}/{sha1[2:4]}/{sha1[4:6]}/{sha1}"
    if not directory:
        return key
    return directory + key if directory.endswith("/") else f"{directory}/{key}"


@dataclass
class User:
    """A registered kachery 2 user (the API key maps to this)."""

    user_id: str
    name: str = "Ada"
    email: str = "ada@example.org"
    research_description: str = "spike sorting"


@dataclass
class ZoneConfig:
    """One zone: who may read and write it, where its objects live, who serves it."""

    owner: str = "github|owner"
    public_download: bool = True
    public_upload: bool = False
    members: dict[str, tuple[bool, bool]] = field(default_factory=dict)  # upload, download
    directory: str = ""
    gateway_directory: str | None = None  # where the gateway looks (default: directory)
    on_kachery2: bool = True
    on_gateway: bool = True
    max_size: int = 1_000_000_000


@dataclass
class Logged:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Fault:
    """A misbehaviour for the next request to an endpoint.

    kind: ``status`` (answer ``status``), ``drop`` (close without answering), ``slow``
    (sleep ``seconds`` first), ``corrupt`` (flip a byte of a download), ``truncate``
    (announce the full length, send half, close), ``extra`` (append bytes to a
    download), ``expired`` (findFile / initiate hand out an already expired URL),
    ``file-url`` (they hand out a ``file://`` URL), ``pending`` (initiate answers
    ``alreadyPending``).
    """

    kind: str
    status: int = 500
    seconds: float = 0.0


class KacheryProtocolServer:
    """The server; use :meth:`running` to serve it on a free loopback port."""

    def __init__(self) -> None:
        self.secret = os.urandom(16)
        self.users_by_key: dict[str, User] = {}
        self.zones: dict[str, ZoneConfig] = {}
        self.gateway_clients: dict[str, str] = {}  # client id -> owner (registered)
        self.bucket: dict[str, bytes] = {}
        self.log: list[Logged] = []
        self.finalized: list[dict[str, Any]] = []
        self.url_ttl = 3600
        self._faults: dict[str, list[Fault]] = {}
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    # ----------------------------------------------------------- set-up API
    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @contextmanager
    def running(self) -> Iterator[KacheryProtocolServer]:
        server = self

        class Handler(_Handler):
            owner = server

        httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._httpd = httpd
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
        thread.daemon = True
        thread.start()
        try:
            yield self
        finally:
            httpd.shutdown()
            httpd.server_close()
            thread.join(timeout=30)

    def add_object(self, zone: str, data: bytes, *, legacy: bool = False) -> str:
        """Put bytes straight into a zone's bucket (``legacy``: where only the gateway
        looks); return their SHA-1."""
        sha1 = hashlib.sha1(data).hexdigest()
        self.bucket[bucket_key(self._directory(self.zones[zone], legacy), sha1)] = data
        return sha1

    @staticmethod
    def _directory(zone: ZoneConfig, legacy: bool) -> str:
        if legacy and zone.gateway_directory is not None:
            return zone.gateway_directory
        return zone.directory

    def inject(self, endpoint: str, fault: Fault, times: int = 1) -> None:
        """Misbehave on the next ``times`` requests to ``endpoint``: ``findFile``,
        ``initiateFileUpload``, ``finalizeFileUpload``, ``gateway``, ``download``,
        ``upload``."""
        with self._lock:
            self._faults.setdefault(endpoint, []).extend([fault] * times)

    def next_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get(endpoint)
            return queue.pop(0) if queue else None

    def requests_to(self, path: str) -> list[Logged]:
        """Logged requests whose path (without query) is ``path``."""
        return [r for r in self.log if urlsplit(r.path).path == path]

    # ---------------------------------------------------------- signed URLs
    def sign_url(self, key: str, method: str, *, expired: bool = False) -> str:
        expires = int(time.time()) + (-10 if expired else self.url_ttl)
        sig = self._signature(key, method, expires)
        return f"{self.url}/bucket/{key}?X-Method={method}&X-Expires={expires}&X-Signature={sig}"

    def _url_for(self, key: str, method: str, endpoint: str) -> str:
        fault = self.next_fault(endpoint + ":url")
        if fault is not None and fault.kind == "file-url":
            return "file:///etc/passwd"
        return self.sign_url(key, method, expired=fault is not None)

    def _signature(self, key: str, method: str, expires: int) -> str:
        msg = f"{method}\n{key}\n{expires}".encode()
        return hmac.new(self.secret, msg, hashlib.sha256).hexdigest()

    def check_url(self, path: str, method: str) -> tuple[str, str | None]:
        """(object key, error message or None) for a signed bucket URL."""
        parts = urlsplit(path)
        key = parts.path[len("/bucket/") :]
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        try:
            expires = int(query["X-Expires"])
            good = hmac.compare_digest(
                query["X-Signature"], self._signature(key, query["X-Method"], expires)
            )
        except (KeyError, ValueError):
            return key, "SignatureDoesNotMatch"
        if not good or query["X-Method"] != method:
            return key, "SignatureDoesNotMatch"
        if expires < time.time():
            return key, "Request has expired"
        return key, None

    # -------------------------------------------------------- API handlers
    def user_for(self, headers: dict[str, str]) -> tuple[User | None, tuple[int, str] | None]:
        """kachery 2: ``authorization.split(" ")[1]`` is the API key, when present."""
        auth = headers.get("authorization")
        if not auth:
            return None, None
        parts = auth.split(" ")
        token = parts[1] if len(parts) > 1 else ""
        user = self.users_by_key.get(token) if token else None
        if user is None:
            return None, (401, "Unauthorized - no user for token")
        return user, None

    def may_upload(self, zone_name: str, zone: ZoneConfig, user: User | None) -> bool:
        uid = user.user_id if user else ""
        if zone_name == "scratch" or zone.public_upload or (uid and uid == zone.owner):
            return True
        return bool(uid) and zone.members.get(uid, (False, False))[0]

    def may_download(self, zone: ZoneConfig, user: User | None) -> bool:
        if zone.public_download:
            return True
        if user is None:
            return False
        return user.user_id == zone.owner or zone.members.get(user.user_id, (False, False))[1]

    def find_file(self, body: Any, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if not _exact(body, FIND_KEYS, "findFileRequest") or not _strs(body, FIND_KEYS):
            return 400, {"error": "Invalid request"}
        if body["hashAlg"] != "sha1" or not _HASH.match(body["hash"]):
            return 400, {"error": "Invalid hash"}
        zone = self.zones.get(body["zoneName"])
        if zone is None or not zone.on_kachery2:
            return 400, {"error": f"Zone not found: {body['zoneName']}"}
        user, failure = self.user_for(headers)
        if failure:
            return failure[0], {"error": failure[1]}
        if not zone.public_download:
            if user is None:
                return 401, {
                    "error": "User API token must be provided when zone does not allow "
                    "public download"
                }
            if not self.may_download(zone, user):
                return 401, {"error": "This user is not allowed to download files from this zone"}
        return 200, self._found(zone, body["hash"], "findFileResponse", "findFile")

    def _found(self, zone: ZoneConfig, sha1: str, type_: str, endpoint: str) -> dict[str, Any]:
        key = bucket_key(self._directory(zone, endpoint == "gateway"), sha1)
        data = self.bucket.get(key)
        if data is None:
            return {"type": type_, "found": False}
        return {
            "type": type_,
            "found": True,
            "url": self._url_for(key, "GET", endpoint),
            "size": len(data),
            "bucketUri": "r2://kachery-test",
            "objectKey": key,
            "cacheHit": False,
        }

    def initiate(self, body: Any, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        keys = set(body) if isinstance(body, dict) else set()
        optional = {"allowPublicZones"} & keys
        if not _exact(body, INITIATE_KEYS | optional, "initiateFileUploadRequest"):
            return 400, {"error": "Invalid request"}
        if optional and body["allowPublicZones"] is not True:
            return 400, {"error": "Invalid request"}
        if not _strs(body, {"hashAlg", "hash", "zoneName", "workToken"}) or not _int(body["size"]):
            return 400, {"error": "Invalid request"}
        sha1, zone_name = body["hash"], body["zoneName"]
        if body["hashAlg"] != "sha1" or not _HASH.match(sha1):
            return 400, {"error": "Invalid hash"}
        if not headers.get("authorization") and zone_name != "scratch":
            return 400, {"error": f"User API token must be provided for zone {zone_name}"}
        if not _TOKEN.match(body["workToken"]) or not work_token_ok(sha1, body["workToken"]):
            return 500, {"error": "Invalid work token"}
        user, failure = self.user_for(headers)
        if failure:
            return failure[0], {"error": failure[1]}
        if user is not None:
            for attr, what in (
                ("email", "User email not set for user"),
                ("research_description", "User research description not set for user"),
                ("name", "Name not set for user"),
            ):
                if not getattr(user, attr):
                    return 400, {"error": f"{what}: {user.user_id}"}
        zone = self.zones.get(zone_name)
        if zone is None or not zone.on_kachery2:
            return 400, {"error": f"Zone not found: {zone_name}"}
        if not self.may_upload(zone_name, zone, user):
            return 401, {"error": "This user is not allowed to upload files to this zone"}
        if body["size"] > zone.max_size:
            return 500, {
                "error": f"File size exceeds maximum for zone: {body['size']} > {zone.max_size}"
            }
        key = bucket_key(zone.directory, sha1)
        if key in self.bucket:
            return 200, {
                "type": "initiateFileUploadResponse",
                "alreadyExists": True,
                "alreadyPending": False,
            }
        if self.next_fault("initiateFileUpload:pending") is not None:
            return 200, {
                "type": "initiateFileUploadResponse",
                "alreadyExists": False,
                "alreadyPending": True,
            }
        return 200, {
            "type": "initiateFileUploadResponse",
            "alreadyExists": False,
            "alreadyPending": False,
            "signedUploadUrl": self._url_for(key, "PUT", "initiateFileUpload"),
            "objectKey": key,
        }

    def finalize(self, body: Any, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if not _exact(body, FINALIZE_KEYS, "finalizeFileUploadRequest"):
            return 400, {"error": "Invalid request"}
        if not _strs(body, FINALIZE_KEYS - {"size"}) or not _int(body["size"]):
            return 400, {"error": "Invalid request"}
        if body["hashAlg"] != "sha1" or not _HASH.match(body["hash"]):
            return 400, {"error": "Invalid hash"}
        zone_name = body["zoneName"]
        if not headers.get("authorization") and zone_name != "scratch":
            return 400, {"error": f"User API token must be provided for zone {zone_name}"}
        user, failure = self.user_for(headers)
        if failure:
            return failure[0], {"error": failure[1]}
        zone = self.zones.get(zone_name)
        if zone is None or not zone.on_kachery2:
            return 400, {"error": f"Zone not found: {zone_name}"}
        if not self.may_upload(zone_name, zone, user):
            return 401, {"error": "This user is not allowed to upload files to this zone"}
        self.finalized.append(body)
        return 200, {"type": "finalizeFileUploadResponse", "success": True}

    def gateway(self, body: Any) -> tuple[int, Any]:
        """kachery-cloud's gateway; errors are HTTP 500 with ``Error: <message>`` text."""
        invalid = (400, f"Invalid request: {json.dumps(body)}")
        if not isinstance(body, dict) or set(body) != {"payload", "fromClientId", "signature"}:
            return invalid
        payload, client_id, signature = body["payload"], body["fromClientId"], body["signature"]
        if not isinstance(payload, dict) or payload.get("type") != "findFile":
            return invalid
        if set(payload) != GATEWAY_FIND_KEYS or not _strs(
            payload, GATEWAY_FIND_KEYS - {"timestamp"}
        ):
            return invalid
        if not _int(payload["timestamp"]) or not isinstance(client_id, str):
            return invalid
        if abs(payload["timestamp"] - time.time() * 1000) > 125_000:
            return 500, "Error: Invalid timestamp for signed request"
        if not _ed25519_ok(payload, client_id, signature):
            return 500, "Error: Invalid signature"
        if payload["hashAlg"] != "sha1" or not _HASH.match(payload["hash"]):
            return 500, "Error: Invalid hash"
        zone = self.zones.get(payload["zone"])
        if zone is None or not zone.on_gateway:
            return 500, f"Error: Unable to find zone: {payload['zone']}"
        if not zone.public_download and client_id not in self.gateway_clients:
            return 500, "Error: Client not registered in this zone"
        found = self._found(zone, payload["hash"], "findFile", "gateway")
        return 200, found

    # ------------------------------------------------------------- bucket
    def download(self, path: str) -> tuple[int, bytes]:
        key, problem = self.check_url(path, "GET")
        if problem is not None:
            return 403, _s3_error("AccessDenied", problem)
        data = self.bucket.get(key)
        if data is None:
            return 404, _s3_error("NoSuchKey", "The specified key does not exist.")
        return 200, data

    def upload(self, path: str, data: bytes) -> tuple[int, bytes]:
        key, problem = self.check_url(path, "PUT")
        if problem is not None:
            return 403, _s3_error("AccessDenied", problem)
        self.bucket[key] = data
        return 200, b""


def _exact(body: Any, keys: set[str], type_: str) -> bool:
    return isinstance(body, dict) and set(body) == keys and body.get("type") == type_


def _strs(body: dict[str, Any], keys: set[str]) -> bool:
    return all(isinstance(body[k], str) for k in keys)


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _s3_error(code: str, message: str) -> bytes:
    xml = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    return f"<?xml version='1.0'?>{xml}".encode()


def _ed25519_ok(payload: dict[str, Any], client_id: str, signature: Any) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha1(text.encode()).digest()
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(client_id))
        key.verify(bytes.fromhex(signature), digest)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


class _QuietServer(ThreadingHTTPServer):
    """Threads per request; a client hanging up early (timeouts, retries) is not news."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    owner: KacheryProtocolServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as real servers do; avoids 40 ms delayed-ACK stalls

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _log(self, body: bytes) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        with self.owner._lock:
            self.owner.log.append(Logged(self.command, self.path, headers, body))

    def _send(self, status: int, body: bytes, content_type: str, length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def _apply(self, endpoint: str) -> Fault | None:
        """Apply a connection-level fault; return a data fault for the handler."""
        fault = self.owner.next_fault(endpoint)
        if fault is None:
            return None
        if fault.kind == "slow":
            time.sleep(fault.seconds)
            return None
        if fault.kind == "drop":
            self.close_connection = True
            return fault
        if fault.kind == "status":
            self._send(
                fault.status, json.dumps({"error": "injected failure"}).encode(), "application/json"
            )
            return fault
        if fault.kind in ("expired", "file-url"):
            self.owner.inject(endpoint + ":url", fault)
            return None
        if fault.kind == "pending":
            self.owner.inject(endpoint + ":pending", fault)
            return None
        return fault

    def do_POST(self) -> None:
        raw = self._read_body()
        self._log(raw)
        route = urlsplit(self.path).path
        endpoints = {
            "/api/findFile": "findFile",
            "/api/initiateFileUpload": "initiateFileUpload",
            "/api/finalizeFileUpload": "finalizeFileUpload",
            "/api/gateway": "gateway",
        }
        endpoint = endpoints.get(route)
        if endpoint is None:
            self._send(404, b'{"error":"Not found"}', "application/json")
            return
        if self._apply(endpoint) is not None:
            return
        if self.headers.get("Content-Type") != "application/json":
            self._send(400, b'{"error":"Invalid request"}', "application/json")
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send(400, b'{"error":"Invalid request"}', "application/json")
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        if endpoint == "gateway":
            status, answer = self.owner.gateway(body)
            if isinstance(answer, str):
                self._send(status, answer.encode(), "text/plain")
            else:
                self._send(status, json.dumps(answer).encode(), "application/json")
            return
        handler = {
            "findFile": self.owner.find_file,
            "initiateFileUpload": self.owner.initiate,
            "finalizeFileUpload": self.owner.finalize,
        }[endpoint]
        status, reply = handler(body, headers)
        self._send(status, json.dumps(reply).encode(), "application/json")

    def do_GET(self) -> None:
        self._log(b"")
        if not self.path.startswith("/bucket/"):
            self._send(404, b"", "text/plain")
            return
        fault = self._apply("download")
        if fault is not None and fault.kind in ("drop", "status"):
            return
        status, data = self.owner.download(self.path)
        kind = fault.kind if fault is not None and status == 200 else None
        if kind == "corrupt":
            data = bytes([data[0] ^ 0x01]) + data[1:] if data else b"x"
        elif kind == "extra":
            data += b"\0" * 4096
        elif kind == "truncate":
            self._send(200, data[: len(data) // 2], "application/octet-stream", len(data))
            self.close_connection = True
            return
        self._send(status, data, "application/octet-stream" if status == 200 else "application/xml")

    def do_PUT(self) -> None:
        raw = self._read_body()
        self._log(raw)
        if not self.path.startswith("/bucket/"):
            self._send(404, b"", "text/plain")
            return
        if self._apply("upload") is not None:
            return
        status, reply = self.owner.upload(self.path, raw)
        self._send(status, reply, "application/xml")
