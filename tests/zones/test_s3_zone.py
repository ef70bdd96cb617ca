"""The S3 zone (fsspec + s3fs) against moto's real S3 HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import kachery_flows as kf
from kachery_flows import (
    CorruptObjectError,
    ObjectNotFoundError,
    Store,
    ZonePermissionError,
    ZoneUnavailableError,
)
from kachery_flows._retry import RetryPolicy
from kachery_flows.testing import MotoS3Server
from kachery_flows.zones import FsspecZone, object_key, open_zone, s3_storage_options

_S3_ERRORS = {
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("SlowDown", "Please reduce your request rate."),
    403: ("AccessDenied", "Access Denied"),
}


class _FaultyS3Proxy:
    """A real HTTP proxy in front of moto that answers the next N requests with an S3
    error (500, 503, 403) instead of forwarding them."""

    def __init__(self, upstream: str) -> None:
        target = urlsplit(upstream)
        proxy = self
        self.failures: list[int] = []
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                with proxy.lock:
                    proxy.requests.append((self.command, self.path))
                    status = proxy.failures.pop(0) if proxy.failures else None
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if status is not None:
                    code, message = _S3_ERRORS[status]
                    payload = (
                        f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
                        f"<Message>{message}</Message></Error>"
                    ).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                self.send_response(response.status)
                for k, v in response.getheaders():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def fail_next(self, status: int, times: int) -> None:
        with self.lock:
            self.failures.extend([status] * times)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def proxy(moto_server: MotoS3Server) -> Iterator[_FaultyS3Proxy]:
    p = _FaultyS3Proxy(moto_server.endpoint_url)
    yield p
    p.close()


def _put_raw(server: MotoS3Server, bucket: str, key: str, data: bytes) -> None:
    server.client().put_object(Bucket=bucket, Key=key, Body=data)


DATA = b"s3 object bytes " * 1000
SHA1 = hashlib.sha1(DATA).hexdigest()


def test_500_twice_then_success_through_a_proxy(
    moto_server: MotoS3Server,
    s3_bucket: str,
    proxy: _FaultyS3Proxy,
    tmp_path: Path,
    fast_retry: RetryPolicy,
) -> None:
    _put_raw(moto_server, s3_bucket, f"z/{object_key(SHA1)}", DATA)
    zone = FsspecZone(
        f"s3://{s3_bucket}/z", storage_options={"endpoint_url": proxy.url}, retry=fast_retry
    )
    proxy.fail_next(500, 2)
    assert Store(tmp_path / "c", zone=zone).load_bytes(f"sha1://{SHA1}") == DATA
    gets = [r for r in proxy.requests if r[0] == "GET"]
    assert len(gets) == 3  # s3fs's and botocore's own retries are off: ours did these


def test_persistent_503_gives_up(
    moto_server: MotoS3Server,
    s3_bucket: str,
    proxy: _FaultyS3Proxy,
    tmp_path: Path,
    fast_retry: RetryPolicy,
) -> None:
    _put_raw(moto_server, s3_bucket, object_key(SHA1), DATA)
    zone = FsspecZone(
        f"s3://{s3_bucket}", storage_options={"endpoint_url": proxy.url}, retry=fast_retry
    )
    proxy.fail_next(503, 100)
    store = Store(tmp_path / "c", zone=zone)
    with pytest.raises(ZoneUnavailableError, match="4 attempts"):
        store.load_bytes(f"sha1://{SHA1}")
    assert len(proxy.requests) == 4
    assert not store.object_path(f"sha1://{SHA1}").exists()


def test_403_is_a_permission_error_naming_the_zone(
    moto_server: MotoS3Server,
    s3_bucket: str,
    proxy: _FaultyS3Proxy,
    tmp_path: Path,
    fast_retry: RetryPolicy,
) -> None:
    zone = FsspecZone(
        f"s3://{s3_bucket}/p", storage_options={"endpoint_url": proxy.url}, retry=fast_retry
    )
    proxy.fail_next(403, 1)
    with pytest.raises(ZonePermissionError, match=f"s3://{s3_bucket}/p"):
        zone.get_ref("memo/x")
    assert len(proxy.requests) == 1


def test_connection_refused_is_unavailable(
    s3_bucket: str, tmp_path: Path, fast_retry: RetryPolicy
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    zone = FsspecZone(
        f"s3://{s3_bucket}",
        storage_options={"endpoint_url": f"http://127.0.0.1:{port}"},
        retry=fast_retry,
    )
    with pytest.raises(ZoneUnavailableError, match="4 attempts"):
        zone.has(SHA1)


def test_endpoint_from_aws_endpoint_url(
    moto_server: MotoS3Server, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint_url)
    monkeypatch.setenv("KACHERY_ZONE", f"s3://{s3_bucket}/from-env")
    uri = kf.store_text("through the environment")
    key = f"from-env/{object_key(uri[7:47])}"
    body = moto_server.client().get_object(Bucket=s3_bucket, Key=key)["Body"].read()
    assert body == b"through the environment"


def test_profile_from_aws_config_files_via_zones_json(
    moto_server: MotoS3Server, s3_bucket: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "aws-config"
    config.write_text(
        f"[profile lab]\nendpoint_url = {moto_server.endpoint_url}\nregion = us-east-1\n"
    )
    credentials = tmp_path / "aws-credentials"
    credentials.write_text("[lab]\naws_access_key_id = a\naws_secret_access_key = b\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    root = Path(os.environ["KACHERY_CLOUD_DIR"])
    root.mkdir(parents=True)
    (root / "zones.json").write_text(
        json.dumps({"lab": {"url": f"s3://{s3_bucket}/lab", "profile": "lab"}})
    )
    monkeypatch.setenv("KACHERY_ZONE", "lab")
    uri = kf.store_json({"profile": "lab"})
    head = moto_server.client().head_object(Bucket=s3_bucket, Key=f"lab/{object_key(uri[7:47])}")
    assert head["ContentLength"] == len(b'{"profile":"lab"}')


def test_per_zone_endpoint_overrides_the_environment(
    moto_server: MotoS3Server,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    fast_retry: RetryPolicy,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    zone = FsspecZone(
        f"s3://{s3_bucket}",
        storage_options=s3_storage_options(endpoint_url=moto_server.endpoint_url),
        retry=fast_retry,
    )
    zone.set_ref("r", "v")
    assert zone.get_ref("r") == "v"


def test_missing_bucket_is_not_found(
    moto_server: MotoS3Server, aws_env: None, tmp_path: Path, fast_retry: RetryPolicy
) -> None:
    zone = FsspecZone(
        "s3://no-such-bucket-kf/p",
        storage_options={"endpoint_url": moto_server.endpoint_url},
        retry=fast_retry,
    )
    assert not zone.has(SHA1)
    with pytest.raises(ObjectNotFoundError):
        Store(tmp_path / "c", zone=zone).load_bytes(f"sha1://{SHA1}")


def test_large_transfer_with_progress(
    moto_server: MotoS3Server, s3_bucket: str, tmp_path: Path, fast_retry: RetryPolicy
) -> None:
    zone = FsspecZone(
        f"s3://{s3_bucket}/big",
        storage_options={"endpoint_url": moto_server.endpoint_url},
        retry=fast_retry,
    )
    data = os.urandom(12 * 1024 * 1024)  # above s3fs's multipart threshold
    writer = Store(tmp_path / "w", zone=zone)
    ref = writer.put_bytes(data, local=True)
    sent: list[int] = []
    assert writer.upload(ref, progress=sent.append)
    assert sum(sent) == len(data)
    received: list[int] = []
    reader = Store(tmp_path / "r", zone=zone)
    path = reader.download(ref, progress=received.append)
    assert sum(received) == len(data)
    assert Path(path).read_bytes() == data


def test_corrupt_local_copy_is_never_uploaded(
    moto_server: MotoS3Server, s3_bucket: str, tmp_path: Path, fast_retry: RetryPolicy
) -> None:
    zone = FsspecZone(
        f"s3://{s3_bucket}",
        storage_options={"endpoint_url": moto_server.endpoint_url},
        retry=fast_retry,
    )
    store = Store(tmp_path / "s", zone=zone)
    ref = store.put_bytes(b"good bytes", local=True)
    store.object_path(ref).write_bytes(b"rotten bytes")
    with pytest.raises(CorruptObjectError, match="refusing to upload"):
        store.upload(ref)
    assert not zone.has(ref.sha1)


def test_s3fs_is_imported_only_by_s3_zones() -> None:
    code = (
        "import sys, kachery_flows, kachery_flows.zones; "
        "from kachery_flows.zones import LocalZone, open_zone; "
        "print(','.join(m for m in ('s3fs', 'fsspec', 'botocore', 'requests', 'pytest', "
        "'hypothesis') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
    code = (
        "import sys; from kachery_flows.zones import open_zone; "
        "open_zone('s3://bucket/prefix'); print('s3fs' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"},
    ).stdout.strip()
    assert out == "True"


def test_zone_urls_from_env(s3_bucket: str, moto_server: MotoS3Server) -> None:
    zone = open_zone(f"s3://{s3_bucket}/a/b/")
    assert isinstance(zone, FsspecZone)
    assert zone.root == f"{s3_bucket}/a/b" and zone.name == f"s3://{s3_bucket}/a/b"


def test_missing_credentials_are_a_permission_error(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, fast_retry: RetryPolicy
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    zone = FsspecZone(
        "s3://bucket/p", storage_options={"endpoint_url": "http://127.0.0.1:9"}, retry=fast_retry
    )
    with pytest.raises(ZonePermissionError, match=r"s3://bucket/p.*credentials"):
        zone.get_ref("x")
