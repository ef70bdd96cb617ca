"""Reads through kachery-cloud's legacy gateway with the user's client keys."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from kachery_protocol_server import KacheryProtocolServer
from knet_data import VECTOR_CLIENT_ID, VECTOR_PRIVATE_KEY, VECTOR_PRIVATE_PEM

from kachery_flows import ObjectNotFoundError, Store, ZoneError
from kachery_flows.zones._kachery_gateway import sign_payload


@pytest.fixture
def client_keys() -> Path:
    """kachery-cloud's client key file in the store root (``$KACHERY_CLOUD_DIR``)."""
    root = Path(os.environ["KACHERY_CLOUD_DIR"])
    root.mkdir(parents=True, exist_ok=True)
    pem = root / "private.pem"
    pem.write_text(VECTOR_PRIVATE_PEM)
    return pem


def _gateway_bodies(kserver: KacheryProtocolServer) -> list[dict[str, object]]:
    return [r.json() for r in kserver.requests_to("/api/gateway")]


@pytest.mark.usefixtures("client_keys")
def test_unported_zone_is_read_through_the_gateway(
    kserver: KacheryProtocolServer, tmp_path: Path
) -> None:
    kserver.gateway_clients[VECTOR_CLIENT_ID] = "github|alice"
    data = os.urandom(3000)
    sha1 = kserver.add_object("oldlab", data)
    store = Store(tmp_path / "s")
    assert store.load_bytes(f"kachery:oldlab:sha1:{sha1}") == data
    assert len(kserver.requests_to("/api/findFile")) == 1  # kachery 2 first: zone unknown
    (envelope,) = _gateway_bodies(kserver)
    payload = envelope["payload"]
    assert isinstance(payload, dict)
    assert envelope["fromClientId"] == VECTOR_CLIENT_ID
    assert envelope["signature"] == sign_payload(payload, VECTOR_PRIVATE_KEY)
    assert {k: v for k, v in payload.items() if k != "timestamp"} == {
        "type": "findFile",
        "hashAlg": "sha1",
        "hash": sha1,
        "zone": "oldlab",
    }


@pytest.mark.usefixtures("client_keys")
def test_object_only_the_gateway_knows_is_found(
    kserver: KacheryProtocolServer, tmp_path: Path
) -> None:
    sha1 = kserver.add_object("ported", b"legacy upload", legacy=True)
    store = Store(tmp_path / "s")
    assert store.exists(f"kachery:ported:sha1:{sha1}")
    assert store.load_bytes(f"kachery:ported:sha1:{sha1}") == b"legacy upload"
    assert len(kserver.requests_to("/api/findFile")) == 2  # found: false, twice
    assert len(_gateway_bodies(kserver)) == 2


def test_without_client_keys_the_gateway_is_never_asked(
    kserver: KacheryProtocolServer, tmp_path: Path
) -> None:
    sha1 = kserver.add_object("ported", b"legacy upload", legacy=True)
    store = Store(tmp_path / "s")
    with pytest.raises(ObjectNotFoundError):
        store.load_bytes(f"kachery:ported:sha1:{sha1}")
    with pytest.raises(ZoneError, match="Zone not found"):
        store.load_bytes(f"kachery:oldlab:sha1:{sha1}")
    assert _gateway_bodies(kserver) == []


@pytest.mark.usefixtures("client_keys")
def test_gateway_refusal_is_reported_with_not_found(
    kserver: KacheryProtocolServer, tmp_path: Path
) -> None:
    sha1 = kserver.add_object("oldlab", b"members only")  # our client is not registered
    with pytest.raises(ObjectNotFoundError, match="Client not registered"):
        Store(tmp_path / "s").load_bytes(f"kachery:oldlab:sha1:{sha1}")
    assert len(_gateway_bodies(kserver)) == 1  # a refusal is not retried


def test_client_keys_from_the_environment(
    kserver: KacheryProtocolServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    kserver.gateway_clients[VECTOR_CLIENT_ID] = "github|alice"
    sha1 = kserver.add_object("oldlab", b"env keys")
    uri = f"kachery:oldlab:sha1:{sha1}"
    monkeypatch.setenv("KACHERY_CLOUD_CLIENT_ID", VECTOR_CLIENT_ID)
    with pytest.raises(ZoneError, match="KACHERY_CLOUD_PRIVATE_KEY is not"):
        Store(tmp_path / "s").load_bytes(uri)
    monkeypatch.setenv("KACHERY_CLOUD_PRIVATE_KEY", "00" * 32)
    with pytest.raises(ZoneError, match="not the public key"):
        Store(tmp_path / "s").load_bytes(uri)
    monkeypatch.setenv("KACHERY_CLOUD_PRIVATE_KEY", VECTOR_PRIVATE_KEY)
    assert Store(tmp_path / "s").load_bytes(uri) == b"env keys"


def test_unreadable_key_file_is_a_clear_error(
    kserver: KacheryProtocolServer, client_keys: Path, tmp_path: Path
) -> None:
    client_keys.write_text("not a key")
    with pytest.raises(ZoneError, match=r"private\.pem.*kachery-cloud-init"):
        Store(tmp_path / "s").load_bytes("kachery:default:sha1:" + "7" * 40)
    assert kserver.log == []
