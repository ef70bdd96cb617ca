"""Attacks by a network peer: a hostile kachery network service and a plain-http mirror
(run in a child process by ``sec_runner.py``; servers listen on 127.0.0.1 only)."""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from kachery_flows._retry import RetryPolicy
from kachery_flows.errors import KacheryError


def _gzip_of_zeros(size: int) -> bytes:
    """gzip of a JSON string of ``size`` zeros: a few hundred KB for hundreds of MB."""
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [c.compress(b'{"found": true, "url": "')]
    block = b"0" * (1 << 20)
    parts.extend(c.compress(block) for _ in range(size >> 20))
    parts.append(c.compress(b'"}'))
    parts.append(c.flush())
    return b"".join(parts)


class _Hostile(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mode = ""
    bomb = b""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with suppress(BrokenPipeError, ConnectionResetError):
            self._answer()

    def _answer(self) -> None:
        mode = type(self).mode
        if mode == "gzip bomb":
            body = type(self).bomb
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif mode in ("huge error body", "huge answer"):
            size = 300 << 20
            self.send_response(400 if mode == "huge error body" else 200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            chunk = b"x" * (1 << 20)
            for _ in range(size >> 20):
                self.wfile.write(chunk)
        elif mode == "deep nesting":
            body = b"[" * 500_000
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)


@contextmanager
def _serve(mode: str) -> Iterator[str]:
    handler = type("Handler", (_Hostile,), {"mode": mode})
    if mode == "gzip bomb":
        handler.bomb = _gzip_of_zeros(512 << 20)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def attack_kachery_network_answers(work: Path) -> dict[str, Any]:
    """findFile answers that are a gzip bomb, a 300 MB error body, a 300 MB answer, or
    nested 500k deep: typed errors, bounded memory and time."""
    from kachery_flows.zones.kachery_network import KacheryNetworkZone

    outcomes = {}
    for mode in ("gzip bomb", "huge error body", "huge answer", "deep nesting"):
        # 512 MB from 0.5 MB of gzip; 300 MB bodies; 500k nested arrays
        with _serve(mode) as url:
            zone = KacheryNetworkZone(
                "default",
                base_url=url,
                timeout=(5.0, 10.0),
                retry=RetryPolicy(total_seconds=2.0, max_attempts=2, initial_delay=0.01),
            )
            started = time.monotonic()
            try:
                zone.has("a" * 40)
                outcomes[mode] = "answered"
            except KacheryError as exc:
                outcomes[mode] = f"{type(exc).__name__}: {str(exc)[:160]}"
            outcomes[mode] += f" ({time.monotonic() - started:.1f} s)"
    outcomes["gzip bomb (512 MB from 0.5 MB)"] = outcomes.pop("gzip bomb")
    outcomes["300 MB error body"] = outcomes.pop("huge error body")
    outcomes["300 MB answer"] = outcomes.pop("huge answer")
    outcomes["JSON nested 500k deep"] = outcomes.pop("deep nesting")
    return {"outcomes": outcomes}


def attack_plain_http_mirror_refs(work: Path) -> dict[str, Any]:
    """A plain-http mirror (or anyone on its path) serves a memo entry pointing at a
    poisoned result: it must not decide the hit unless the user opted in."""
    from kachery_flows import Store, kachery_cached
    from kachery_flows.action_cache import action_cache
    from kachery_flows.testing import DirectoryHTTPServer
    from kachery_flows.zones import HttpZone

    www = work / "www"
    www.mkdir()
    outcomes = {}
    with DirectoryHTTPServer(www) as server:
        poisoned = server.put_object(b"poisoned").rsplit("/", 1)[1]
        record = server.put_object(b'{"schema":"x"}').rsplit("/", 1)[1]
        for opt_in in (False, True):
            zone = HttpZone(
                server.url,
                plain_http_refs=opt_in,
                retry=RetryPolicy(total_seconds=2.0, max_attempts=2),
            )
            store = Store(work / f"reader-{opt_in}", zone=zone, fsync=False)

            @kachery_cached(store=store, version="1")
            def compute(x: int) -> bytes:
                return b"honest"

            ref = www / "refs" / action_cache(store).ref_name(compute.key(1))
            ref.parent.mkdir(parents=True, exist_ok=True)
            ref.write_text(f"kfm1 {record} {poisoned} bytes 8 -")
            outcomes["opted in" if opt_in else "default"] = compute(1).decode()
    return {"outcomes": outcomes}
