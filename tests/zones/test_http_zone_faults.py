"""The HTTP zone against a real local server that misbehaves on purpose."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest

from kachery_flows import (
    CorruptObjectError,
    ObjectNotFoundError,
    Store,
    ZoneError,
    ZonePermissionError,
    ZoneUnavailableError,
)
from kachery_flows._retry import RetryPolicy
from kachery_flows.testing import DirectoryHTTPServer, Fault
from kachery_flows.zones import HttpZone, object_key

DATA = b"the object's real bytes\n" * 4096


@pytest.fixture
def key(http_directory_server: DirectoryHTTPServer) -> str:
    """Publish DATA on the server; return its object key."""
    return http_directory_server.put_object(DATA)


@pytest.fixture
def zone(http_directory_server: DirectoryHTTPServer, fast_retry: RetryPolicy) -> HttpZone:
    return HttpZone(http_directory_server.url, retry=fast_retry)


@pytest.fixture
def reader(zone: HttpZone, tmp_path: Path) -> Store:
    return Store(tmp_path / "cache", zone=zone, fsync=False)


def uri_of(key: str) -> str:
    return "sha1://" + key.rsplit("/", 1)[1]


def assert_nothing_cached(store: Store, uri: str) -> None:
    assert not store.object_path(uri).exists()
    assert not any(store.iter_temp_files())


def test_500_twice_then_the_right_bytes(
    http_directory_server: DirectoryHTTPServer, key: str, reader: Store
) -> None:
    http_directory_server.add_fault(key, Fault(status=500, times=2))
    assert reader.load_bytes(uri_of(key)) == DATA
    assert http_directory_server.hits(key, "GET") == 3


def test_persistent_503_gives_up_within_the_policy(
    http_directory_server: DirectoryHTTPServer, key: str, reader: Store
) -> None:
    http_directory_server.add_fault(key, Fault(status=503, times=None))
    with pytest.raises(ZoneUnavailableError, match=r"HTTP 503.*4 attempts"):
        reader.load_bytes(uri_of(key))
    assert http_directory_server.hits(key, "GET") == 4
    assert_nothing_cached(reader, uri_of(key))


def test_429_is_retried(
    http_directory_server: DirectoryHTTPServer, key: str, zone: HttpZone
) -> None:
    http_directory_server.add_fault(key, Fault(status=429))
    assert zone.has(key.rsplit("/", 1)[1])
    assert http_directory_server.hits(key, "HEAD") == 2


def test_wrong_bytes_raise_corrupt_and_cache_nothing(
    http_directory_server: DirectoryHTTPServer, key: str, reader: Store
) -> None:
    http_directory_server.add_fault(key, Fault(body=b"evil bytes", times=None))
    with pytest.raises(CorruptObjectError, match="discarded") as info:
        reader.load_bytes(uri_of(key))
    assert info.value.actual_sha1 == hashlib.sha1(b"evil bytes").hexdigest()
    # The download is repeated once (bytes damaged in transit), then given up.
    assert http_directory_server.hits(key, "GET") == 2
    assert_nothing_cached(reader, uri_of(key))


def test_truncated_body_with_honest_length_is_corrupt(
    http_directory_server: DirectoryHTTPServer, key: str, reader: Store
) -> None:
    http_directory_server.add_fault(key, Fault(body=DATA[:-100], times=None))
    with pytest.raises(CorruptObjectError):
        reader.load_bytes(uri_of(key))
    assert_nothing_cached(reader, uri_of(key))


def test_wrong_bytes_once_are_repaired_by_the_second_download(
    http_directory_server: DirectoryHTTPServer, key: str, reader: Store
) -> None:
    http_directory_server.add_fault(key, Fault(body=DATA[:1000] + b"X" + DATA[1001:]))
    assert reader.load_bytes(uri_of(key)) == DATA
    assert http_directory_server.hits(key, "GET") == 2


def test_body_cut_short_is_retried(
    http_directory_server: DirectoryHTTPServer, key: str, reader: Store
) -> None:
    http_directory_server.add_fault(key, Fault(truncate_to=5000))
    assert reader.load_bytes(uri_of(key)) == DATA
    assert http_directory_server.hits(key, "GET") == 2


def test_body_always_cut_short_fails_and_caches_nothing(
    http_directory_server: DirectoryHTTPServer, key: str, reader: Store
) -> None:
    http_directory_server.add_fault(key, Fault(truncate_to=5000, times=None))
    with pytest.raises(ZoneUnavailableError, match="4 attempts"):
        reader.load_bytes(uri_of(key))
    assert_nothing_cached(reader, uri_of(key))


def test_stalled_response_times_out_and_is_retried(
    http_directory_server: DirectoryHTTPServer,
    key: str,
    tmp_path: Path,
    fast_retry: RetryPolicy,
) -> None:
    http_directory_server.add_fault(key, Fault(delay=1.0))
    zone = HttpZone(http_directory_server.url, retry=fast_retry, timeout=(5.0, 0.2))
    assert Store(tmp_path / "t", zone=zone).load_bytes(uri_of(key)) == DATA
    assert http_directory_server.hits(key, "GET") == 2


def test_dropped_connection_is_retried(
    http_directory_server: DirectoryHTTPServer, key: str, reader: Store
) -> None:
    http_directory_server.add_fault(key, Fault(drop=True))
    assert reader.load_bytes(uri_of(key)) == DATA


@pytest.mark.parametrize("status", [401, 403])
def test_denied_is_a_permission_error_naming_the_zone(
    http_directory_server: DirectoryHTTPServer, key: str, reader: Store, status: int
) -> None:
    http_directory_server.add_fault(key, Fault(status=status, times=None))
    with pytest.raises(ZonePermissionError, match=f"{http_directory_server.url}.*HTTP {status}"):
        reader.load_bytes(uri_of(key))
    assert http_directory_server.hits(key, "GET") == 1
    assert isinstance(ZonePermissionError("x"), PermissionError)
    assert_nothing_cached(reader, uri_of(key))


def test_404_is_not_found_without_retries(
    http_directory_server: DirectoryHTTPServer, reader: Store
) -> None:
    sha1 = hashlib.sha1(b"absent").hexdigest()
    with pytest.raises(ObjectNotFoundError, match=sha1):
        reader.load_bytes(f"sha1://{sha1}")
    assert http_directory_server.hits(object_key(sha1), "GET") == 1


def test_other_4xx_is_a_zone_error_without_retries(
    http_directory_server: DirectoryHTTPServer, key: str, reader: Store
) -> None:
    http_directory_server.add_fault(key, Fault(status=418))
    with pytest.raises(ZoneError, match="HTTP 418") as info:
        reader.load_bytes(uri_of(key))
    assert not isinstance(info.value, (ZoneUnavailableError, ZonePermissionError))
    assert http_directory_server.hits(key, "GET") == 1


def test_redirect_within_the_origin_is_followed(
    http_directory_server: DirectoryHTTPServer, key: str, reader: Store
) -> None:
    http_directory_server.add_fault("moved/x", Fault(location=f"/{key}"))
    http_directory_server.add_fault(key, Fault(location=f"{http_directory_server.url}/moved/x"))
    assert reader.load_bytes(uri_of(key)) == DATA
    assert http_directory_server.hits("moved/x") == 1


def test_redirect_to_another_host_is_refused(
    http_directory_server: DirectoryHTTPServer,
    key: str,
    tmp_path: Path,
    fast_retry: RetryPolicy,
) -> None:
    other_dir = tmp_path / "other"
    (other_dir / key).parent.mkdir(parents=True)
    (other_dir / key).write_bytes(DATA)
    with DirectoryHTTPServer(other_dir) as other:
        elsewhere = other.url.replace("127.0.0.1", "localhost") + f"/{key}"
        http_directory_server.add_fault(key, Fault(location=elsewhere, times=None))
        store = Store(tmp_path / "a", zone=HttpZone(http_directory_server.url, retry=fast_retry))
        with pytest.raises(ZoneError, match="allowed_redirect_hosts"):
            store.load_bytes(uri_of(key))
        assert other.hits(key) == 0
        assert_nothing_cached(store, uri_of(key))

        trusting = HttpZone(
            http_directory_server.url,
            retry=fast_retry,
            allowed_redirect_hosts=["localhost"],
            headers={"Authorization": "Bearer zone-token"},
        )
        assert Store(tmp_path / "b", zone=trusting).load_bytes(uri_of(key)) == DATA
        assert other.hits(key, "GET") == 1
        # The zone's credentials went to the zone, not to the host it redirected to.
        assert http_directory_server.request_headers(key)[-1]["Authorization"] == (
            "Bearer zone-token"
        )
        assert "Authorization" not in other.request_headers(key)[0]


def test_redirect_from_https_to_http_is_refused(fast_retry: RetryPolicy) -> None:
    zone = HttpZone("https://zone.example", retry=fast_retry, allowed_redirect_hosts=["cdn"])
    with pytest.raises(ZoneError, match="refusing"):
        zone._check_redirect("https://zone.example/sha1/x", "http://cdn/sha1/x")
    zone._check_redirect("https://zone.example/sha1/x", "https://cdn/sha1/x")
    zone._check_redirect("https://zone.example/a", "https://zone.example/b")


def test_connection_refused_is_unavailable(tmp_path: Path, fast_retry: RetryPolicy) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    zone = HttpZone(f"http://127.0.0.1:{port}", retry=fast_retry)
    with pytest.raises(ZoneUnavailableError, match="4 attempts"):
        Store(tmp_path / "c", zone=zone).load_bytes("sha1://" + "a" * 40)


def test_refs_over_http(http_directory_server: DirectoryHTTPServer, zone: HttpZone) -> None:
    ref = http_directory_server.directory / "refs" / "memo" / "k1"
    ref.parent.mkdir(parents=True)
    ref.write_text("sha1://" + "b" * 40)
    http_directory_server.add_fault("refs/memo/k1", Fault(status=502))
    assert zone.get_ref("memo/k1") == "sha1://" + "b" * 40
    assert http_directory_server.hits("refs/memo/k1") == 2
    assert zone.get_ref("memo/k2") is None
    http_directory_server.add_fault("refs/memo/k1", Fault(status=403))
    with pytest.raises(ZonePermissionError):
        zone.get_ref("memo/k1")


def test_headers_go_to_the_zone_and_credentials_stay_out_of_its_name(
    http_directory_server: DirectoryHTTPServer, key: str, tmp_path: Path
) -> None:
    url = http_directory_server.url.replace("http://", "http://user:secret@")
    zone = HttpZone(url + "/", headers={"X-Zone-Token": "t"})
    assert "secret" not in zone.name and "secret" not in repr(zone)
    assert zone.name == http_directory_server.url
    assert Store(tmp_path / "d", zone=zone).load_bytes(uri_of(key)) == DATA
    sent = http_directory_server.request_headers(key)[-1]
    assert sent["X-Zone-Token"] == "t"
    assert sent["Authorization"].startswith("Basic ")  # from the URL's user:secret


@pytest.mark.parametrize("url", ["ftp://x/y", "http://", "https://host/p?q=1", "host/path"])
def test_bad_base_urls(url: str) -> None:
    with pytest.raises(ZoneError):
        HttpZone(url)


def test_progress_reports_every_byte(key: str, reader: Store) -> None:
    seen: list[int] = []
    reader.download(uri_of(key), progress=seen.append)
    assert sum(seen) == len(DATA)
