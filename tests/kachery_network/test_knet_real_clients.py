"""The protocol server and our zone against the real kachery 2 and kachery-cloud clients.

The real clients run in subprocesses (kachery 2 reads ``KACHERY_BASE_URL`` at import)
with stdin closed, pointed at the local protocol server only. This shows the server
accepts exactly what the reference clients send, and that objects cross both ways.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from kachery_protocol_server import KacheryProtocolServer
from knet_data import API_KEY, FAST, VECTOR_CLIENT_ID, VECTOR_PRIVATE_PEM, VECTOR_PUBLIC_PEM

from kachery_flows import Store, parse_uri
from kachery_flows.zones.kachery_network import KacheryNetworkZone


def _run(code: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _kachery2_env(kserver: KacheryProtocolServer, tmp_path: Path) -> dict[str, str]:
    return {
        "KACHERY_DIR": str(tmp_path / "kachery2-dir"),
        "KACHERY_BASE_URL": kserver.url,
        "KACHERY_API_KEY": API_KEY,
        "KACHERY_ZONE": "default",
    }


def test_kachery2_publishes_and_we_load(kserver: KacheryProtocolServer, tmp_path: Path) -> None:
    out = _run(
        "import kachery as ka; print(ka.store_text('from kachery 2\\n', label='k2.txt'))",
        _kachery2_env(kserver, tmp_path),
    )
    uri = out.strip().splitlines()[-1]
    assert uri.startswith("kachery:default:sha1:") and uri.endswith(":k2.txt")
    assert len(kserver.finalized) == 1  # its initiate passed the server's strict checks
    ref = parse_uri(uri)
    assert ref.zone == "default" and ref.label == "k2.txt"
    assert Store(tmp_path / "ours").load_text(uri) == "from kachery 2\n"


def test_we_publish_and_kachery2_loads(
    kserver: KacheryProtocolServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KACHERY_API_KEY", API_KEY)
    zone = KacheryNetworkZone("default", retry=FAST)
    ref = Store(tmp_path / "ours", zone=zone).put_text("from kachery-flows")
    out = _run(
        f"import kachery as ka; print(ka.load_text('kachery:default:sha1:{ref.sha1}'))",
        _kachery2_env(kserver, tmp_path),
    )
    assert out.strip().splitlines()[-1] == "from kachery-flows"


def test_kachery_cloud_reads_through_the_gateway_emulation(
    kserver: KacheryProtocolServer, tmp_path: Path
) -> None:
    kserver.gateway_clients[VECTOR_CLIENT_ID] = "github|alice"
    sha1 = kserver.add_object("oldlab", b"gateway bytes")
    kc_dir = tmp_path / "kachery-cloud-client"
    kc_dir.mkdir()
    (kc_dir / "private.pem").write_text(VECTOR_PRIVATE_PEM)
    (kc_dir / "public.pem").write_text(VECTOR_PUBLIC_PEM)
    out = _run(
        f"import kachery_cloud as kcl; print(kcl.load_text('sha1://{sha1}'))",
        {
            "KACHERY_CLOUD_DIR": str(kc_dir),
            "KACHERY_GATEWAY_URL": kserver.url,
            "KACHERY_ZONE": "oldlab",
        },
    )
    assert out.strip().splitlines()[-1] == "gateway bytes"
    (envelope,) = [r.json() for r in kserver.requests_to("/api/gateway")]
    assert envelope["fromClientId"] == VECTOR_CLIENT_ID
