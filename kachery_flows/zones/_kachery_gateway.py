"""Signed ``findFile`` requests to kachery-cloud's legacy gateway (private).

kachery-cloud signs every gateway request with the client's Ed25519 key: the payload
(with a millisecond ``timestamp``) is serialized as canonical JSON (sorted keys, no
spaces), its SHA-1 is taken, and the 20 raw digest bytes are signed. Keys are the
``private.pem`` file kachery-cloud keeps in ``$KACHERY_CLOUD_DIR`` (exactly three lines:
header, base64 of a fixed PKCS#8 prefix plus the 32-byte key, footer), or the
``KACHERY_CLOUD_CLIENT_ID``/``KACHERY_CLOUD_PRIVATE_KEY`` pair. Signing needs the optional
``cryptography`` package; without it the gateway is simply not used.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib.util
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import NetworkSettings
from ..errors import ZoneError

__all__ = [
    "ClientKeys",
    "LegacyGateway",
    "canonical_json",
    "find_file_envelope",
    "load_client_keys",
    "private_key_from_pem",
    "signing_available",
    "sign_payload",
]

_PRIVATE_PREFIX = bytes.fromhex("302e020100300506032b657004220420")
_PEM_HEADER = "-----BEGIN PRIVATE KEY-----"
_PEM_FOOTER = "-----END PRIVATE KEY-----"


@dataclass(frozen=True)
class ClientKeys:
    """A kachery-cloud client identity: the public key (client ID) and private key, hex."""

    client_id: str
    private_key_hex: str = field(repr=False)


@dataclass(frozen=True)
class LegacyGateway:
    """Where the legacy gateway is and who signs requests to it."""

    url: str
    keys: ClientKeys


def signing_available() -> bool:
    """Whether the optional ``cryptography`` package (Ed25519) can be imported."""
    return importlib.util.find_spec("cryptography") is not None


def canonical_json(payload: Mapping[str, Any]) -> str:
    """The JSON text kachery-cloud signs: sorted keys, ``(',', ':')`` separators."""
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


def sign_payload(payload: Mapping[str, Any], private_key_hex: str) -> str:
    """Ed25519 signature (128 hex digits) of the SHA-1 of ``canonical_json(payload)``."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(private_key_hex))
    digest = hashlib.sha1(canonical_json(payload).encode("utf-8")).digest()
    return key.sign(digest).hex()


def _public_key_hex(private_key_hex: str) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(private_key_hex))
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def private_key_from_pem(text: str, source: str) -> str:
    """The raw private key (64 hex digits) in kachery-cloud's three-line ``private.pem``."""
    lines = text.split("\n")
    problem = None
    if len(lines) < 3 or lines[0] != _PEM_HEADER or lines[2] != _PEM_FOOTER:
        problem = "it is not the three-line PEM file kachery-cloud writes"
    else:
        try:
            der = base64.b64decode(lines[1], validate=True)
        except binascii.Error:
            der = b""
        if len(der) != len(_PRIVATE_PREFIX) + 32 or not der.startswith(_PRIVATE_PREFIX):
            problem = "it does not hold an Ed25519 private key"
        else:
            return der[len(_PRIVATE_PREFIX) :].hex()
    raise ZoneError(
        f"cannot read the kachery-cloud client key {source}: {problem}. Move it aside, or "
        "re-create it with `kachery-cloud-init`"
    )


def load_client_keys(root: Path, settings: NetworkSettings) -> ClientKeys | None:
    """The kachery-cloud client keys, from the environment or ``<root>/private.pem``.

    Returns None when there are none (the gateway is then not used).
    """
    if settings.client_id is not None:
        if settings.private_key_hex is None:
            raise ZoneError(
                "KACHERY_CLOUD_CLIENT_ID is set but KACHERY_CLOUD_PRIVATE_KEY is not: set "
                "both (the private key as 64 hex digits) or unset both"
            )
        try:
            derived = _public_key_hex(settings.private_key_hex)
        except ValueError as exc:
            raise ZoneError(f"KACHERY_CLOUD_PRIVATE_KEY is not a raw Ed25519 key: {exc}") from None
        if derived != settings.client_id:
            raise ZoneError(
                "KACHERY_CLOUD_CLIENT_ID is not the public key of KACHERY_CLOUD_PRIVATE_KEY"
            )
        return ClientKeys(settings.client_id, settings.private_key_hex)
    pem = root / "private.pem"
    try:
        text = pem.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ZoneError(f"cannot read the kachery-cloud client key {pem}: {exc}") from exc
    private_key_hex = private_key_from_pem(text, str(pem))
    return ClientKeys(_public_key_hex(private_key_hex), private_key_hex)


def find_file_envelope(sha1: str, zone: str, keys: ClientKeys, timestamp_ms: int) -> dict[str, Any]:
    """The signed request body of a gateway ``findFile`` (exactly kachery-cloud's)."""
    payload = {
        "type": "findFile",
        "hashAlg": "sha1",
        "hash": sha1,
        "zone": zone,
        "timestamp": timestamp_ms,
    }
    return {
        "payload": payload,
        "fromClientId": keys.client_id,
        "signature": sign_payload(payload, keys.private_key_hex),
    }
