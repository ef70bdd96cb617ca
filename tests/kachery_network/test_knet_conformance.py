"""The kachery network zone passes ZoneTests against the local protocol server.

Raw access goes to the server's bucket: ``write_raw`` plants bytes where ``findFile``
finds them, ``read_raw`` reads what an upload left there. The zone cannot list, delete or
hold refs; ZoneTests checks that those operations raise.
"""

from __future__ import annotations

import pytest
from kachery_protocol_server import KacheryProtocolServer
from knet_data import API_KEY, FAST

from kachery_flows.testing import ZoneTests
from kachery_flows.zones import Zone
from kachery_flows.zones.kachery_network import KacheryNetworkZone


class TestKacheryNetworkZone(ZoneTests):
    """Alice's key on the ``default`` zone (objects at the bucket's root)."""

    zone_name = "default"
    directory = ""
    api_key: str | None = API_KEY

    @pytest.fixture
    def zone(self, kserver: KacheryProtocolServer) -> Zone:
        self.server = kserver
        return KacheryNetworkZone(
            self.zone_name, api_key=self.api_key, retry=FAST, timeout=(5.0, 5.0)
        )

    def _bucket_key(self, key: str) -> str:
        return f"{self.directory}/{key}" if self.directory else key

    def write_raw(self, zone: Zone, key: str, data: bytes) -> None:
        self.server.bucket[self._bucket_key(key)] = data

    def read_raw(self, zone: Zone, key: str) -> bytes | None:
        return self.server.bucket.get(self._bucket_key(key))


class TestScratchKacheryNetworkZone(TestKacheryNetworkZone):
    """``scratch``: anyone may upload, no API key; objects under ``scratch/``."""

    zone_name = "scratch"
    directory = "scratch"
    api_key = None
