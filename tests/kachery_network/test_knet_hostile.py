"""The kachery network zone against a misbehaving service and bucket."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from kachery_protocol_server import Fault, KacheryProtocolServer
from knet_data import FAST

from kachery_flows import (
    CorruptObjectError,
    ObjectNotFoundError,
    Store,
    ZoneError,
    ZonePermissionError,
    ZoneUnavailableError,
)
from kachery_flows.zones.kachery_network import KacheryNetworkZone


def _setup(
    kserver: KacheryProtocolServer, zone: KacheryNetworkZone, tmp_path: Path
) -> tuple[bytes, str, Store]:
    data = os.urandom(200_000)
    sha1 = kserver.add_object("default", data)
    return data, f"sha1://{sha1}", Store(tmp_path / "s", zone=zone)


def _clean(store: Store, uri: str) -> bool:
    staged = list(store.staging_dir.iterdir()) if store.staging_dir.exists() else []
    return not store.object_path(uri).exists() and not staged


def _gets(kserver: KacheryProtocolServer) -> int:
    return sum(1 for r in kserver.log if r.method == "GET")


@pytest.mark.parametrize("kind", ["corrupt", "extra"])
def test_wrong_bytes_never_enter_the_cache(
    kind: str, kserver: KacheryProtocolServer, zone: KacheryNetworkZone, tmp_path: Path
) -> None:
    data, uri, store = _setup(kserver, zone, tmp_path)
    # The store downloads mismatching bytes once more before it gives up.
    kserver.inject("download", Fault(kind), times=2)
    with pytest.raises(CorruptObjectError) as info:
        store.load_bytes(uri)
    assert info.value.uri == uri and info.value.actual_sha1 != uri[7:]
    assert _clean(store, uri)
    assert store.load_bytes(uri) == data  # the next, honest download is accepted


@pytest.mark.parametrize(
    ("endpoint", "fault"),
    [
        ("findFile", Fault("status", 500)),
        ("findFile", Fault("status", 502)),
        ("findFile", Fault("status", 429)),
        ("findFile", Fault("drop")),
        ("download", Fault("status", 503)),
        ("download", Fault("drop")),
        ("download", Fault("truncate")),
    ],
    ids=lambda v: v if isinstance(v, str) else f"{v.kind}{v.status if v.kind == 'status' else ''}",
)
def test_transient_failures_are_retried(
    endpoint: str,
    fault: Fault,
    kserver: KacheryProtocolServer,
    zone: KacheryNetworkZone,
    tmp_path: Path,
) -> None:
    data, uri, store = _setup(kserver, zone, tmp_path)
    kserver.inject(endpoint, fault, times=2)
    assert store.load_bytes(uri) == data
    if endpoint == "findFile":
        assert len(kserver.requests_to("/api/findFile")) == 3
    else:
        assert _gets(kserver) == 3


def test_slow_answers_time_out_and_are_retried(
    kserver: KacheryProtocolServer, tmp_path: Path
) -> None:
    zone = KacheryNetworkZone("default", retry=FAST, timeout=(5.0, 0.3))
    data, uri, store = _setup(kserver, zone, tmp_path)
    kserver.inject("findFile", Fault("slow", seconds=1.5))
    kserver.inject("download", Fault("slow", seconds=1.5))
    assert store.load_bytes(uri) == data
    assert len(kserver.requests_to("/api/findFile")) == 2
    assert _gets(kserver) == 2


def test_persistent_failure_gives_up_within_its_bounds(
    kserver: KacheryProtocolServer, zone: KacheryNetworkZone, tmp_path: Path
) -> None:
    _, uri, store = _setup(kserver, zone, tmp_path)
    kserver.inject("download", Fault("status", 500), times=50)
    with pytest.raises(ZoneUnavailableError, match="HTTP 500") as info:
        store.load_bytes(uri)
    assert "gave up after 5 attempts" in str(info.value)
    assert _gets(kserver) == FAST.max_attempts
    assert _clean(store, uri)


def test_expired_download_url_is_refreshed_once(
    kserver: KacheryProtocolServer, zone: KacheryNetworkZone, tmp_path: Path
) -> None:
    data, uri, store = _setup(kserver, zone, tmp_path)
    kserver.inject("findFile", Fault("expired"))
    assert store.load_bytes(uri) == data
    assert len(kserver.requests_to("/api/findFile")) == 2
    gets = [r for r in kserver.log if r.method == "GET"]
    assert len(gets) == 2 and gets[0].path != gets[1].path


def test_url_refused_twice_is_a_permission_error(
    kserver: KacheryProtocolServer, zone: KacheryNetworkZone, tmp_path: Path
) -> None:
    _, uri, store = _setup(kserver, zone, tmp_path)
    kserver.inject("findFile", Fault("expired"), times=5)
    with pytest.raises(ZonePermissionError, match="Request has expired"):
        store.load_bytes(uri)
    assert len(kserver.requests_to("/api/findFile")) == 2
    assert _clean(store, uri)


def test_bucket_without_the_listed_object_is_not_found(
    kserver: KacheryProtocolServer, zone: KacheryNetworkZone, tmp_path: Path
) -> None:
    _, uri, store = _setup(kserver, zone, tmp_path)
    kserver.inject("download", Fault("status", 404))
    with pytest.raises(ObjectNotFoundError, match="bucket has no such object"):
        store.load_bytes(uri)
    assert _gets(kserver) == 1
    assert _clean(store, uri)


def test_service_that_is_down_is_unavailable(tmp_path: Path) -> None:
    zone = KacheryNetworkZone(
        "default", base_url="http://127.0.0.1:9", retry=FAST, timeout=(2.0, 2.0)
    )
    store = Store(tmp_path / "s", zone=zone)
    with pytest.raises(ZoneUnavailableError, match="findFile") as info:
        store.load_bytes("sha1://" + "6" * 40)
    assert "KACHERY_NETWORK_RETRY_SECONDS" in str(info.value)


def test_non_http_url_from_the_service_is_refused(
    kserver: KacheryProtocolServer, zone: KacheryNetworkZone, tmp_path: Path
) -> None:
    _, uri, store = _setup(kserver, zone, tmp_path)
    kserver.inject("findFile", Fault("file-url"))
    with pytest.raises(ZoneError, match="usable url") as info:
        store.load_bytes(uri)
    assert "file:///etc/passwd" in str(info.value)
    assert _gets(kserver) == 0 and _clean(store, uri)
