"""A real headless Chromium driven over the DevTools protocol (a websocket on loopback).

Just enough of the protocol for the page tests: navigate, evaluate, screenshot, and the
events that show console errors and network requests.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from websockets.sync.client import ClientConnection, connect

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
    "--window-size=1280,800",
]


class Chromium:
    """``with Chromium(tmp_dir) as browser: page = browser.open(url)``."""

    def __init__(self, work: Path) -> None:
        binary = shutil.which("chromium")
        assert binary, "chromium is not installed: `make test` installs it (apt-get)"
        self.profile = work / "chromium-profile"
        self.profile.mkdir(parents=True)
        self.proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            assert self.proc.poll() is None, "chromium exited at start"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            time.sleep(0.1)
        self.port = int(port_file.read_text().split()[0])

    def open(self, url: str) -> Page:
        """Attach to the browser's page, start recording events, load ``url``."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list") as r:
            targets = json.load(r)
        ws = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        page = Page(connect(ws, max_size=None, open_timeout=30))
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.send(f"{domain}.enable")
        page.send(
            "Emulation.setDeviceMetricsOverride",
            width=1280,
            height=800,
            deviceScaleFactor=1,
            mobile=False,
        )
        page.send("Page.navigate", url=url)
        page.wait_for("Page.loadEventFired")
        return page

    def __enter__(self) -> Chromium:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Page:
    """One page target; every event received is kept in :attr:`events`."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call ``method``; its result (protocol errors raise)."""
        call = next(self.ids)
        self.ws.send(json.dumps({"id": call, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == call:
                assert "error" not in message, message
                result: dict[str, Any] = message["result"]
                return result
            self.events.append(message)

    def wait_for(self, event: str) -> None:
        """Receive until ``event`` arrives (or was already received)."""
        while not any(e.get("method") == event for e in self.events):
            self.events.append(json.loads(self.ws.recv(timeout=60)))

    def eval(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression (exceptions fail the test)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def screenshot(self, path: Path) -> bytes:
        """A PNG of the viewport, also written to ``path``."""
        data = base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"])
        path.write_bytes(data)
        return data

    def console_errors(self) -> list[dict[str, Any]]:
        """Uncaught exceptions, ``console.error``/``assert`` calls and error log entries."""
        errors = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if (
                method == "Runtime.exceptionThrown"
                or (
                    method == "Runtime.consoleAPICalled"
                    and params.get("type") in ("error", "assert")
                )
                or (method == "Log.entryAdded" and params["entry"].get("level") == "error")
            ):
                errors.append(e)
        return errors

    def requests(self) -> list[str]:
        """URLs of every request the page made (the page's own file included)."""
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        ]
