"""An HTTP zone that misbehaves, beyond ``tests/zones/test_http_zone_faults.py`` (which
covers 5xx, 429, resets, a stall before answering, truncated and wrong bodies, and one
redirect to another host): redirect loops and redirects to other schemes and ports,
stalls in the middle of a body, a slow drip that never trips the read timeout, lying
Content-Lengths, and the total time a persistently failing zone may take. Every case
ends in a typed error within the retry policy's bounds, with nothing in the cache.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from kachery_flows import CorruptObjectError, Store, ZoneError, ZoneUnavailableError
from kachery_flows._retry import RetryPolicy
from kachery_flows.testing import DirectoryHTTPServer, Fault
from kachery_flows.zones import HttpZone

DATA = bytes(range(256)) * 1024  # 256 KiB


@pytest.fixture
def key(http_directory_server: DirectoryHTTPServer) -> str:
    return http_directory_server.put_object(DATA)


def uri_of(key: str) -> str:
    return "sha1://" + key.rsplit("/", 1)[1]


def _reader(server: DirectoryHTTPServer, tmp_path: Path, **options: Any) -> Store:
    options.setdefault(
        "retry", RetryPolicy(total_seconds=3.0, max_attempts=3, initial_delay=0.01, max_delay=0.05)
    )
    return Store(tmp_path / "cache", zone=HttpZone(server.url, **options), fsync=False)


def _nothing_cached(store: Store, key: str) -> bool:
    return not store.object_path(uri_of(key)).exists() and not any(store.iter_temp_files())


def test_a_redirect_loop_is_cut_short(
    http_directory_server: DirectoryHTTPServer, key: str, tmp_path: Path
) -> None:
    http_directory_server.add_fault(key, Fault(location=f"/{key}", times=None))
    store = _reader(http_directory_server, tmp_path)
    with pytest.raises(ZoneError, match="more than 5 redirects"):
        store.load_bytes(uri_of(key))
    assert http_directory_server.hits(key) == 6
    assert _nothing_cached(store, key)


@pytest.mark.parametrize(
    "target",
    [
        "file:///etc/passwd",
        "ftp://127.0.0.1/x",
        "https://127.0.0.1:1/x",
        "gopher://x/y",
        "//evil.example/sha1/x",
        "http://[::1]:9/x",
    ],
)
def test_redirects_to_other_schemes_and_hosts_are_refused(
    http_directory_server: DirectoryHTTPServer, key: str, tmp_path: Path, target: str
) -> None:
    http_directory_server.add_fault(key, Fault(location=target, times=None))
    store = _reader(http_directory_server, tmp_path)
    with pytest.raises(ZoneError, match="refusing to follow"):
        store.load_bytes(uri_of(key))
    assert http_directory_server.hits(key) == 1  # a refusal is not retried
    assert _nothing_cached(store, key)


def test_a_redirect_to_another_port_of_the_same_host_is_refused(
    http_directory_server: DirectoryHTTPServer, key: str, tmp_path: Path, figures: Any
) -> None:
    other_dir = tmp_path / "other"
    (other_dir / key).parent.mkdir(parents=True)
    (other_dir / key).write_bytes(b"the other server's bytes")
    with DirectoryHTTPServer(other_dir) as other:
        http_directory_server.add_fault(key, Fault(location=f"{other.url}/{key}", times=None))
        store = _reader(http_directory_server, tmp_path)
        with pytest.raises(ZoneError, match="outside the zone's origin"):
            store.load_bytes(uri_of(key))
        assert other.hits(key) == 0
    figures.add(
        "hostile zones",
        "redirects: loops cut after 5; other schemes, hosts and ports refused, never fetched",
        "all typed ZoneError, nothing cached",
    )


def test_a_stall_in_the_middle_of_a_body_is_retried(
    http_directory_server: DirectoryHTTPServer, key: str, tmp_path: Path
) -> None:
    http_directory_server.add_fault(key, Fault(drip=1.0))  # 1 KiB, then a 1 s pause
    store = _reader(http_directory_server, tmp_path, timeout=(2.0, 0.2))
    assert store.load_bytes(uri_of(key)) == DATA
    assert http_directory_server.hits(key, "GET") == 2


def _bounded(load: Any, bound: float) -> tuple[BaseException, float]:
    start = time.monotonic()
    with pytest.raises(ZoneUnavailableError) as info:
        load()
    elapsed = time.monotonic() - start
    assert elapsed < bound, elapsed
    return info.value, elapsed


def test_persistent_stalls_give_up_within_the_time_budget(
    http_directory_server: DirectoryHTTPServer, key: str, tmp_path: Path, figures: Any
) -> None:
    """However many attempts the policy allows, the time budget ends the retries: no new
    attempt starts once a sleep would cross it (each attempt is bounded by its timeouts)."""
    http_directory_server.add_fault(key, Fault(delay=0.6, times=None))
    retry = RetryPolicy(total_seconds=1.5, max_attempts=1000, initial_delay=0.05, max_delay=0.05)
    store = _reader(http_directory_server, tmp_path, timeout=(1.0, 0.3), retry=retry)
    error, elapsed = _bounded(lambda: store.load_bytes(uri_of(key)), 1.5 + 0.3 + 1.0)
    assert "time budget" in str(error)
    attempts = http_directory_server.hits(key, "GET")
    assert 2 <= attempts < 1000
    assert _nothing_cached(store, key)
    figures.add(
        "hostile zones",
        "server stalling every request (budget 1.5 s, read timeout "
        "0.3 s, up to 1000 attempts): attempts / seconds until ZoneUnavailableError",
        f"{attempts} / {elapsed:.1f}",
    )


def test_a_slow_drip_is_cut_off(
    http_directory_server: DirectoryHTTPServer, key: str, tmp_path: Path, figures: Any
) -> None:
    """1 KiB every 50 ms, announcing a terabyte, never trips a 0.5 s read timeout; the
    zone's minimum speed (here 50 KiB/s over 0.5 s) ends each attempt, and the retry
    budget ends the rest."""
    http_directory_server.add_fault(key, Fault(drip=0.05, length=10**12, times=None))
    store = _reader(http_directory_server, tmp_path, timeout=(1.0, 0.5), min_speed=(50 * 1024, 0.5))
    error, elapsed = _bounded(lambda: store.load_bytes(uri_of(key)), 3.0 + 2 * 0.6 + 1.0)
    assert "too slow" in str(error)
    assert _nothing_cached(store, key)
    figures.add(
        "hostile zones",
        "slow drip (20 KiB/s, under the read timeout) of a 256 KiB "
        "object, minimum speed 50 KiB/s: seconds until ZoneUnavailableError "
        "(a full drip: 12.8 s per attempt)",
        f"{elapsed:.1f}",
    )


def test_the_minimum_speed_lets_a_steady_transfer_finish(
    http_directory_server: DirectoryHTTPServer, key: str, tmp_path: Path
) -> None:
    http_directory_server.add_fault(key, Fault(drip=0.002))  # ~500 KiB/s: fast enough
    store = _reader(http_directory_server, tmp_path, min_speed=(50 * 1024, 0.2))
    assert store.load_bytes(uri_of(key)) == DATA


@pytest.mark.parametrize(
    ("length", "error"),
    [
        (10**12, ZoneUnavailableError),  # announces a terabyte, sends 256 KiB, hangs up
        (len(DATA) - 1000, CorruptObjectError),  # announces less: the rest is never read
    ],
)
def test_lying_content_lengths(
    http_directory_server: DirectoryHTTPServer,
    key: str,
    tmp_path: Path,
    length: int,
    error: type[Exception],
    figures: Any,
) -> None:
    http_directory_server.add_fault(key, Fault(length=length, times=None))
    store = _reader(http_directory_server, tmp_path)
    with pytest.raises(error):
        store.load_bytes(uri_of(key))
    assert _nothing_cached(store, key)
    if length == 10**12:
        figures.add(
            "hostile zones",
            "Content-Length of 10^12 / shorter than the body",
            "ZoneUnavailableError / CorruptObjectError, nothing cached",
        )


def test_credentials_in_the_zone_url_never_reach_a_message(
    http_directory_server: DirectoryHTTPServer, key: str, tmp_path: Path, figures: Any
) -> None:
    url = http_directory_server.url.replace("http://", "http://reader:s3cret-token@")
    zone = HttpZone(url, retry=RetryPolicy(max_attempts=1))
    store = Store(tmp_path / "cache", zone=zone, fsync=False)
    faults = [
        Fault(status=500),
        Fault(status=418),
        Fault(status=403),
        Fault(location="http://elsewhere.example/x"),
        Fault(body=b"wrong bytes", times=2),
        Fault(truncate_to=10),
    ]
    messages = []
    for fault in faults:
        http_directory_server.add_fault(key, fault)
        with pytest.raises(ZoneError if fault.body is None else CorruptObjectError) as info:
            store.load_bytes(uri_of(key))
        messages.append(str(info.value))
    closed = HttpZone(url.rsplit(":", 1)[0] + ":9", retry=RetryPolicy(max_attempts=1))
    with pytest.raises(ZoneUnavailableError) as info:
        Store(tmp_path / "c2", zone=closed).load_bytes(uri_of(key))
    messages.append(str(info.value))
    leaked = [m for m in messages if "s3cret" in m]
    assert leaked == []
    assert store.load_bytes(uri_of(key)) == DATA  # the credentials do reach the server
    assert http_directory_server.request_headers(key)[-1]["Authorization"].startswith("Basic")
    figures.add(
        "hostile zones",
        "error messages (7 kinds of failure) leaking the zone URL's credentials",
        f"{len(leaked)} of {len(messages)}",
    )


GARBAGE_REFS = {
    "not UTF-8": b"\xff\xfe\x00garbage",
    "2 MiB of text": b"kfm1 " * (400 * 1024),
    "a 64 GiB sparse file": None,  # made with truncate: no disk used
}


@pytest.mark.parametrize("what", sorted(GARBAGE_REFS))
def test_garbage_memo_refs_in_a_zone_are_misses(
    tmp_path: Path,
    what: str,
    http_directory_server: DirectoryHTTPServer,
    fast_retry: RetryPolicy,
    figures: Any,
) -> None:
    """A zone's ref map is written by others: a ref that is not text, or is huge, must make
    a memo call recompute (in bounded memory), never fail it."""
    from kachery_flows import kachery_cached
    from kachery_flows.zones import LocalZone

    zone_dir = http_directory_server.directory
    stores = {
        "LocalZone": Store(tmp_path / "a", zone=LocalZone(zone_dir, fsync=False)),
        "HttpZone (read-only)": Store(
            tmp_path / "b", zone=HttpZone(http_directory_server.url, retry=fast_retry)
        ),
    }
    for where, store in stores.items():

        @kachery_cached(store=store, version="1")
        def double(x: float) -> float:
            return 2 * x

        ref_file = zone_dir / "refs" / "memo" / double.key(4.0)
        ref_file.parent.mkdir(parents=True, exist_ok=True)
        data = GARBAGE_REFS[what]
        if data is None:
            with open(ref_file, "wb") as f:
                f.truncate(64 << 30)
        else:
            ref_file.write_bytes(data)
        assert not double.is_cached(4.0), where
        assert double(4.0) == 8.0, where
        assert double(4.0) == 8.0, where  # and now a hit, from the entry written meanwhile
    figures.add(
        "hostile zones",
        f"garbage memo ref in the zone ({what}): memo calls via LocalZone / HttpZone",
        "recomputed, no error, bounded memory",
    )
