"""Test support for zones: the ``ZoneTests`` conformance suite and real local servers.

Importing this package imports pytest and hypothesis (the ``test`` extra);
``import kachery_flows`` never imports it. A third-party zone proves conformance with::

    from kachery_flows.testing import ZoneTests

    class TestMyZone(ZoneTests):
        @pytest.fixture
        def zone(self, tmp_path): ...
        def write_raw(self, zone, key, data): ...
        def read_raw(self, zone, key): ...

Fixtures (``moto_server``, ``aws_env``, ``s3_bucket``, ``http_directory_server``) live in
:mod:`kachery_flows.testing.fixtures`.
"""

from __future__ import annotations

from ._servers import DirectoryHTTPServer, Fault, MotoS3Server
from ._zone_tests import BAD_REF_NAMES, ZoneTests

__all__ = ["BAD_REF_NAMES", "DirectoryHTTPServer", "Fault", "MotoS3Server", "ZoneTests"]
