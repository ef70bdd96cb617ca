"""Publishing to the kachery network zone."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from kachery_protocol_server import Fault, KacheryProtocolServer, bucket_key, work_token_ok
from knet_data import API_KEY, FAST, OUTSIDER_KEY

import kachery_flows as kf
from kachery_flows import (
    CorruptObjectError,
    Store,
    ZoneError,
    ZonePermissionError,
)
from kachery_flows.zones.kachery_network import KacheryNetworkZone


@pytest.fixture
def with_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KACHERY_API_KEY", API_KEY)


def _bodies(kserver: KacheryProtocolServer, endpoint: str) -> list[dict[str, object]]:
    return [r.json() for r in kserver.requests_to(f"/api/{endpoint}")]


@pytest.mark.usefixtures("with_key")
def test_store_publishes_and_another_machine_loads(
    kserver: KacheryProtocolServer, zone: KacheryNetworkZone, tmp_path: Path
) -> None:
    arr = np.arange(1000, dtype=np.float32).reshape(10, 100)
    uri = Store(tmp_path / "a", zone=zone).store_npy(arr, label="a.npy")
    sha1 = kf.parse_uri(uri).sha1
    assert (
        kserver.bucket[bucket_key("", sha1)]
        == (tmp_path / "a").joinpath("sha1", sha1[:2], sha1[2:4], sha1[4:6], sha1).read_bytes()
    )
    size = len(kserver.bucket[bucket_key("", sha1)])
    (initiate,) = _bodies(kserver, "initiateFileUpload")
    token = initiate.pop("workToken")
    assert isinstance(token, str) and work_token_ok(sha1, token)
    assert initiate == {
        "type": "initiateFileUploadRequest",
        "size": size,
        "hashAlg": "sha1",
        "hash": sha1,
        "zoneName": "default",
    }
    assert _bodies(kserver, "finalizeFileUpload") == [
        {
            "type": "finalizeFileUploadRequest",
            "objectKey": bucket_key("", sha1),
            "hashAlg": "sha1",
            "hash": sha1,
            "zoneName": "default",
            "size": size,
        }
    ]
    posts = [r for r in kserver.log if r.method == "POST"]
    assert all(r.headers["authorization"] == f"Bearer {API_KEY}" for r in posts)
    (put,) = [r for r in kserver.log if r.method == "PUT"]
    assert "authorization" not in put.headers  # the signed URL is the credential
    assert int(put.headers["content-length"]) == size
    other = Store(tmp_path / "b", zone=zone)
    np.testing.assert_array_equal(other.load_npy(uri), arr)


@pytest.mark.usefixtures("with_key")
def test_existing_object_is_not_uploaded_again(
    kserver: KacheryProtocolServer, zone: KacheryNetworkZone, tmp_path: Path
) -> None:
    kserver.add_object("default", b"already there")
    Store(tmp_path / "s", zone=zone).store_text("already there")
    assert len(_bodies(kserver, "initiateFileUpload")) == 1
    assert not [r for r in kserver.log if r.method == "PUT"]
    assert not kserver.finalized


def test_publishing_without_a_key_says_how_to_get_one(
    kserver: KacheryProtocolServer, zone: KacheryNetworkZone, tmp_path: Path
) -> None:
    store = Store(tmp_path / "s", zone=zone)
    with pytest.raises(ZonePermissionError) as info:
        store.store_text("no key")
    message = str(info.value)
    for part in ("KACHERY_API_KEY", "https://kachery.vercel.app", "API key", "scratch", "_local"):
        assert part in message
    assert kserver.log == []  # refused before any request, and never prompted
    assert store.exists(kf.store_text_local("no key"))  # the local copy is kept


def test_scratch_zone_needs_no_key(kserver: KacheryProtocolServer, tmp_path: Path) -> None:
    zone = KacheryNetworkZone("scratch", retry=FAST)
    uri = Store(tmp_path / "s", zone=zone).store_text("scratch result")
    sha1 = kf.parse_uri(uri).sha1
    assert kserver.bucket[bucket_key("scratch", sha1)] == b"scratch result"
    assert all("authorization" not in r.headers for r in kserver.log)
    assert kserver.finalized[0]["zoneName"] == "scratch"


@pytest.mark.usefixtures("with_key")
def test_allow_public_zones_flag(
    kserver: KacheryProtocolServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KACHERY_ALLOW_PUBLIC_ZONES", "1")
    Store(tmp_path / "s", zone=KacheryNetworkZone("default", retry=FAST)).store_text("pub")
    Store(tmp_path / "s", zone=KacheryNetworkZone("lab", retry=FAST)).store_text("lab")
    flags = [b.get("allowPublicZones") for b in _bodies(kserver, "initiateFileUpload")]
    assert flags == [True, None]


def test_key_without_upload_rights_is_refused(
    kserver: KacheryProtocolServer,
    zone: KacheryNetworkZone,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("KACHERY_API_KEY", OUTSIDER_KEY)
    with pytest.raises(ZonePermissionError, match="not allowed to upload"):
        Store(tmp_path / "s", zone=zone).store_text("mallory's")
    assert len(_bodies(kserver, "initiateFileUpload")) == 1
    assert kserver.bucket == {}


@pytest.mark.usefixtures("with_key")
def test_expired_upload_url_is_replaced(
    kserver: KacheryProtocolServer, zone: KacheryNetworkZone, tmp_path: Path
) -> None:
    kserver.inject("initiateFileUpload", Fault("expired"))
    uri = Store(tmp_path / "s", zone=zone).store_text("late upload")
    assert len(_bodies(kserver, "initiateFileUpload")) == 2
    assert [r.method for r in kserver.log].count("PUT") == 2
    assert kserver.bucket[bucket_key("", kf.parse_uri(uri).sha1)] == b"late upload"
    assert len(kserver.finalized) == 1


@pytest.mark.usefixtures("with_key")
@pytest.mark.parametrize(
    ("endpoint", "fault"),
    [
        ("initiateFileUpload", Fault("status", 500)),
        ("initiateFileUpload", Fault("drop")),
        ("upload", Fault("status", 503)),
        ("finalizeFileUpload", Fault("status", 502)),
    ],
    ids=["initiate500", "initiate-drop", "put503", "finalize502"],
)
def test_transient_upload_failures_are_retried(
    endpoint: str,
    fault: Fault,
    kserver: KacheryProtocolServer,
    zone: KacheryNetworkZone,
    tmp_path: Path,
) -> None:
    kserver.inject(endpoint, fault, times=2)
    uri = Store(tmp_path / "s", zone=zone).store_text(f"retried {endpoint}")
    assert kserver.bucket[bucket_key("", kf.parse_uri(uri).sha1)] == f"retried {endpoint}".encode()
    assert len(kserver.finalized) == 1


@pytest.mark.usefixtures("with_key")
def test_pending_upload_is_waited_for(
    kserver: KacheryProtocolServer, zone: KacheryNetworkZone, tmp_path: Path
) -> None:
    kserver.inject("initiateFileUpload", Fault("pending"), times=2)
    uri = Store(tmp_path / "s", zone=zone).store_text("after the other upload")
    assert len(_bodies(kserver, "initiateFileUpload")) == 3
    assert kserver.bucket[bucket_key("", kf.parse_uri(uri).sha1)] == b"after the other upload"


@pytest.mark.usefixtures("with_key")
def test_upload_url_that_is_not_http_is_refused(
    kserver: KacheryProtocolServer, zone: KacheryNetworkZone, tmp_path: Path
) -> None:
    kserver.inject("initiateFileUpload", Fault("file-url"))
    with pytest.raises(ZoneError, match="usable signedUploadUrl"):
        Store(tmp_path / "s", zone=zone).store_text("not to a file")
    assert not [r for r in kserver.log if r.method == "PUT"] and not kserver.finalized


@pytest.mark.usefixtures("with_key")
def test_permanent_server_error_is_not_retried(
    kserver: KacheryProtocolServer, zone: KacheryNetworkZone, tmp_path: Path
) -> None:
    kserver.zones["default"].max_size = 10
    with pytest.raises(ZoneError, match="File size exceeds maximum"):
        Store(tmp_path / "s", zone=zone).store_text("more than ten bytes")
    assert len(_bodies(kserver, "initiateFileUpload")) == 1


@pytest.mark.usefixtures("with_key")
def test_refuses_to_upload_bytes_that_do_not_match(
    kserver: KacheryProtocolServer, zone: KacheryNetworkZone, tmp_path: Path
) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"actual bytes")
    with pytest.raises(CorruptObjectError, match="refusing to upload"):
        zone.put(src, hashlib.sha1(b"other bytes").hexdigest())
    assert kserver.log == []


@pytest.mark.usefixtures("with_key")
def test_key_exported_after_the_zone_was_opened_is_used(
    kserver: KacheryProtocolServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("KACHERY_API_KEY")
    monkeypatch.setenv("KACHERY_ZONE", "kachery:default")
    with pytest.raises(ZonePermissionError):
        kf.store_text("first try")
    monkeypatch.setenv("KACHERY_API_KEY", API_KEY)
    uri = kf.store_text("first try")
    assert kserver.bucket[bucket_key("", kf.parse_uri(uri).sha1)] == b"first try"


@pytest.mark.usefixtures("with_key")
def test_large_file_streams_through(
    kserver: KacheryProtocolServer, zone: KacheryNetworkZone, tmp_path: Path
) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    uri = Store(tmp_path / "a", zone=zone).store_file(src)
    dest = Store(tmp_path / "b", zone=zone).load_file(uri)
    assert Path(dest).read_bytes() == src.read_bytes()
    assert kserver.bucket[bucket_key("", kf.parse_uri(uri).sha1)] == src.read_bytes()
