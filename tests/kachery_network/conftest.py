"""Fixtures for the kachery network zone: a local protocol server and zones on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kachery_protocol_server import KacheryProtocolServer, User, ZoneConfig
from knet_data import API_KEY, FAST, OUTSIDER_KEY

from kachery_flows.zones.kachery_network import KacheryNetworkZone


@pytest.fixture(autouse=True)
def _no_real_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing reaches the internet: services default to a closed loopback port."""
    monkeypatch.setenv("KACHERY_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("KACHERY_GATEWAY_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("KACHERY_NETWORK_RETRY_SECONDS", "5")
    for name in (
        "KACHERY_API_KEY",
        "KACHERY_ALLOW_PUBLIC_ZONES",
        "KACHERY_CLOUD_CLIENT_ID",
        "KACHERY_CLOUD_PRIVATE_KEY",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def kserver(monkeypatch: pytest.MonkeyPatch) -> Iterator[KacheryProtocolServer]:
    """A running protocol server that the environment points at.

    Zones: ``default`` (public download; Alice may upload), ``scratch`` (anyone may
    upload), ``lab`` (private, under directory ``labs/lab``; Alice is a member),
    ``ported`` (objects the gateway keeps under ``legacy``), ``oldlab`` (only on the
    legacy gateway, private; clients must be registered).
    """
    server = KacheryProtocolServer()
    server.users_by_key[API_KEY] = User("github|alice")
    server.users_by_key[OUTSIDER_KEY] = User("github|mallory")
    server.zones["default"] = ZoneConfig(members={"github|alice": (True, True)})
    server.zones["scratch"] = ZoneConfig(directory="scratch")
    server.zones["lab"] = ZoneConfig(
        public_download=False, members={"github|alice": (True, True)}, directory="labs/lab"
    )
    server.zones["ported"] = ZoneConfig(gateway_directory="legacy")
    server.zones["oldlab"] = ZoneConfig(on_kachery2=False, public_download=False)
    with server.running():
        monkeypatch.setenv("KACHERY_BASE_URL", server.url)
        monkeypatch.setenv("KACHERY_GATEWAY_URL", server.url)
        yield server


@pytest.fixture
def zone(kserver: KacheryProtocolServer) -> KacheryNetworkZone:
    """The ``default`` zone on the protocol server, with fast retries and short timeouts."""
    return KacheryNetworkZone("default", retry=FAST, timeout=(5.0, 5.0))
