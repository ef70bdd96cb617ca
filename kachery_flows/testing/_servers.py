"""Real servers on 127.0.0.1 for zone tests: a moto S3 server and a directory HTTP server
whose responses can be scripted to misbehave (errors, wrong or truncated bodies,
redirects)."""

from __future__ import annotations

import hashlib
import shutil
import sys
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

from .._layout import object_key

__all__ = ["DirectoryHTTPServer", "Fault", "MotoS3Server"]


class MotoS3Server:
    """moto's S3 over real HTTP on ``127.0.0.1`` and a free port (``moto[server]``).

    Clients reach it at :attr:`endpoint_url` with any credentials.
    """

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint_url = ""

    def start(self) -> MotoS3Server:
        """Start serving; return self."""
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.stop()

    def client(self) -> Any:
        """A boto3 S3 client for this server (ground truth, bypassing s3fs)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh unique name by default) and return its name."""
        bucket = name or f"kf-{uuid.uuid4().hex[:20]}"
        self.client().create_bucket(Bucket=bucket)
        return bucket


@dataclass
class Fault:
    """One scripted misbehaviour of :class:`DirectoryHTTPServer` for a path.

    Set one of ``status`` (reply with it and an empty body), ``body`` (reply 200 with
    these bytes and an honest length), ``truncate_to`` (announce the file's length, send
    that many bytes, close), ``location`` (302 there) or ``drop`` (close without a
    reply); ``delay`` (seconds) stalls before answering, alone or with another field.
    ``drip`` (seconds) pauses after every KiB of a served file's body (a slow drip; a
    stall mid-body when longer than the client's read timeout), and ``length`` announces
    that Content-Length instead of the file's (a lying server).
    ``times`` is how many requests the fault answers (None: every request from now on).
    """

    delay: float = 0.0
    status: int | None = None
    body: bytes | None = None
    truncate_to: int | None = None
    location: str | None = None
    drop: bool = False
    drip: float = 0.0
    length: int | None = None
    times: int | None = 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, directory: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.directory = directory
        self.lock = threading.Lock()
        self.faults: dict[str, deque[Fault]] = defaultdict(deque)
        self.log: list[tuple[str, str, dict[str, str]]] = []

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout) leaves a broken pipe behind: expected here.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)

    def next_fault(self, method: str, path: str, headers: dict[str, str]) -> Fault | None:
        with self.lock:
            self.log.append((method, path, headers))
            queue = self.faults.get(path)
            if not queue:
                return None
            fault = queue[0]
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    queue.popleft()
            return fault


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: with Nagle's algorithm on, the body
    # waits for the client's delayed ACK, about 40 ms per request on Linux.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _empty(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _serve(self, *, body: bool) -> None:
        path = unquote(urlsplit(self.path).path).lstrip("/")
        fault = self.server.next_fault(self.command, path, dict(self.headers.items()))
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.drop:
            self.close_connection = True
            return
        if fault is not None and fault.status is not None:
            return self._empty(fault.status)
        if fault is not None and fault.location is not None:
            return self._empty(302, {"Location": fault.location})
        if fault is not None and fault.body is not None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(fault.body)))
            self.end_headers()
            if body:
                self.wfile.write(fault.body)
            return None
        target = self.server.directory.joinpath(*path.split("/"))
        if ".." in path.split("/") or not target.is_file():
            return self._empty(404)
        size = target.stat().st_size
        announced = fault.length if fault is not None and fault.length is not None else size
        self.send_response(200)
        self.send_header("Content-Length", str(announced))
        self.end_headers()
        if not body:
            return None
        with open(target, "rb") as f:
            if fault is not None and fault.drip:
                self._drip(f, fault)
                return None
            if fault is not None and fault.truncate_to is not None:
                self.wfile.write(f.read(fault.truncate_to))
                self.wfile.flush()
                self.close_connection = True
                return None
            shutil.copyfileobj(f, self.wfile, 1024 * 1024)
        if announced != size:
            self.close_connection = True
        return None

    def _drip(self, f: Any, fault: Fault) -> None:
        sent = 0
        limit = fault.truncate_to
        while chunk := f.read(1024 if limit is None else min(1024, limit - sent)):
            self.wfile.write(chunk)
            self.wfile.flush()
            sent += len(chunk)
            time.sleep(fault.drip)
        self.close_connection = True


class DirectoryHTTPServer:
    """Serve ``directory`` read-only over HTTP/1.1 on ``127.0.0.1`` and a free port.

    :meth:`add_fault` scripts misbehaviour for a path; :meth:`hits` counts requests.
    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._server = _Server(self.directory)
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> DirectoryHTTPServer:
        """Start serving in a background thread; return self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> DirectoryHTTPServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def put_object(self, data: bytes) -> str:
        """Serve ``data`` as an object; return its key (``sha1/aa/bb/cc/<hash>``)."""
        key = object_key(hashlib.sha1(data).hexdigest())
        path = self.directory / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return key

    def add_fault(self, path: str, fault: Fault) -> None:
        """Answer the next request(s) for ``path`` (relative, e.g. ``sha1/aa/...``) with
        ``fault``; faults for one path apply in the order they were added."""
        with self._server.lock:
            self._server.faults[path.lstrip("/")].append(fault)

    def hits(self, path: str, method: str | None = None) -> int:
        """How many requests for ``path`` (optionally with ``method``) were received."""
        path = path.lstrip("/")
        with self._server.lock:
            return sum(1 for m, p, _h in self._server.log if p == path and method in (None, m))

    def request_headers(self, path: str) -> list[dict[str, str]]:
        """The headers of each request received for ``path``, oldest first."""
        path = path.lstrip("/")
        with self._server.lock:
            return [h for _m, p, h in self._server.log if p == path]
