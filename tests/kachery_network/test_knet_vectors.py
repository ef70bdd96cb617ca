"""Known-answer vectors from shared/reference/kachery.md section 6."""

from __future__ import annotations

import hashlib
import random

import pytest
from kachery_protocol_server import work_token_ok
from knet_data import (
    VECTOR_CLIENT_ID,
    VECTOR_PRIVATE_KEY,
    VECTOR_PRIVATE_PEM,
    VECTOR_PUBLIC_PEM,
)

from kachery_flows import ZoneError
from kachery_flows.zones._kachery_gateway import (
    ClientKeys,
    canonical_json,
    find_file_envelope,
    private_key_from_pem,
    sign_payload,
)
from kachery_flows.zones.kachery_network import check_work_token, make_work_token

H = "d9e989f651cdd269d7f9bb8a215d024d8d283688"


def test_work_token_vector() -> None:
    token = "000000000000414a"
    assert hashlib.sha1((H + token).encode()).hexdigest() == (
        "000225ebefb3319042cac1a18afe437b48ecf0d0"
    )
    assert check_work_token(H, token)
    assert work_token_ok(H, token)


def test_work_token_difficulty_boundary() -> None:
    # 0x000225eb... has 14 leading zero bits: it passes 13 and 14, fails 15.
    assert check_work_token(H, "000000000000414a", difficulty=14)
    assert not check_work_token(H, "000000000000414a", difficulty=15)
    assert not check_work_token(H, "0000000000000000")  # sha1 starts with a non-zero nibble
    assert hashlib.sha1((H + "0000000000000000").encode()).hexdigest()[:3] != "000"


@pytest.mark.parametrize("seed", range(20))
def test_made_tokens_pass_the_servers_check(seed: int) -> None:
    sha1 = hashlib.sha1(str(seed).encode()).hexdigest()
    token = make_work_token(sha1)
    assert len(token) == 16 and int(token, 16) >= 0
    assert work_token_ok(sha1, token)


def test_client_and_server_checks_agree() -> None:
    rng = random.Random(7)
    results = []
    for _ in range(20000):
        token = f"{rng.getrandbits(64):016x}"
        results.append(check_work_token(H, token))
        assert results[-1] == work_token_ok(H, token)
    assert 0 < sum(results) < 20  # about 1 in 8192 tokens pass


PAYLOAD = {
    "type": "findFile",
    "hashAlg": "sha1",
    "hash": H,
    "zone": "default",
    "timestamp": 1700000000000,
}


def test_signature_vector() -> None:
    canonical = canonical_json(PAYLOAD)
    assert canonical == (
        '{"hash":"d9e989f651cdd269d7f9bb8a215d024d8d283688","hashAlg":"sha1",'
        '"timestamp":1700000000000,"type":"findFile","zone":"default"}'
    )
    assert hashlib.sha1(canonical.encode()).hexdigest() == (
        "75af70793f346d803990a14c477911011779224e"
    )
    assert sign_payload(PAYLOAD, VECTOR_PRIVATE_KEY) == (
        "a6de80c781e982211f40635fa587907167310cb6669e1ddfb577f9e201916565"
        "c054d0c7a944476ff16ecadfcf18c3ae7853f4e0eb29af98b52cc091fbe26109"
    )
    assert sign_payload({"type": "addClient"}, VECTOR_PRIVATE_KEY) == (
        "4d69ed9b430785b576ade25eaabc563e334a1e3f1d6742f56832a5cf247c9122"
        "2f0fabf6bb15d50939f2bcc57ddaade726ed04bdd1e0ff1119ef0d9a79eb1d01"
    )


def test_private_pem_vector() -> None:
    assert hashlib.sha256(b"kachery-test-key").hexdigest() == VECTOR_PRIVATE_KEY
    assert private_key_from_pem(VECTOR_PRIVATE_PEM, "vector") == VECTOR_PRIVATE_KEY
    assert private_key_from_pem(VECTOR_PRIVATE_PEM + "\n", "vector") == VECTOR_PRIVATE_KEY


@pytest.mark.parametrize(
    "text",
    [
        "",
        VECTOR_PUBLIC_PEM,
        VECTOR_PRIVATE_PEM.replace("MC4C", "MC4D"),
        VECTOR_PRIVATE_PEM.replace("\n", "\r\n"),
        "-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----",
    ],
)
def test_malformed_private_pem_is_a_clear_error(text: str) -> None:
    with pytest.raises(ZoneError, match="kachery-cloud client key"):
        private_key_from_pem(text, "/x/private.pem")


def test_envelope_matches_kachery_cloud_shape() -> None:
    keys = ClientKeys(VECTOR_CLIENT_ID, VECTOR_PRIVATE_KEY)
    envelope = find_file_envelope(H, "default", keys, 1700000000000)
    assert envelope == {
        "payload": PAYLOAD,
        "fromClientId": VECTOR_CLIENT_ID,
        "signature": sign_payload(PAYLOAD, VECTOR_PRIVATE_KEY),
    }
    assert list(envelope["payload"]) == ["type", "hashAlg", "hash", "zone", "timestamp"]
