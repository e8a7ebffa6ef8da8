"""Wycheproof's AES-GCM vectors through the vault's own AES-GCM core.

The core does one thing, AES-256-GCM with 96-bit nonces and 128-bit tags: those vectors
must give the exact ciphertext and tag (valid) or be rejected (invalid). Every other vector
(AES-128/192 keys, other nonce lengths) must be refused by the core, and is counted.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from agent_service.vault.aead import AES256GCM, AuthenticationFailed, UnsupportedParameters

VECTORS = Path(__file__).resolve().parents[1] / "data" / "wycheproof" / "aes_gcm_test.json"
SUITE = json.loads(VECTORS.read_text(encoding="utf-8"))


def _cases(supported: bool) -> list[tuple[dict, dict]]:
    cases = []
    for group in SUITE["testGroups"]:
        fits = group["keySize"] == 256 and group["ivSize"] == 96 and group["tagSize"] == 128
        if fits == supported:
            cases.extend((group, test) for test in group["tests"])
    return cases


SUPPORTED = _cases(supported=True)
REFUSED = _cases(supported=False)


def _id(case: tuple[dict, dict]) -> str:
    group, test = case
    return f"tc{test['tcId']}-k{group['keySize']}-iv{group['ivSize']}-{test['result']}"


def test_the_vectors_are_the_published_file_and_all_of_it_is_accounted_for():
    assert SUITE["algorithm"] == "AES-GCM"
    assert "Apache License" in (VECTORS.parent / "LICENSE").read_text(encoding="utf-8")
    assert len(SUPPORTED) + len(REFUSED) == SUITE["numberOfTests"] == 316
    results = Counter(test["result"] for _, test in SUPPORTED)
    assert results == {"valid": 39, "invalid": 27}
    assert len(REFUSED) == 250


@pytest.mark.parametrize("case", SUPPORTED, ids=_id)
def test_aes_256_gcm_with_96_bit_nonces_matches_wycheproof(case):
    _, test = case
    key, iv = bytes.fromhex(test["key"]), bytes.fromhex(test["iv"])
    aad, msg = bytes.fromhex(test["aad"]), bytes.fromhex(test["msg"])
    sealed = bytes.fromhex(test["ct"]) + bytes.fromhex(test["tag"])
    core = AES256GCM(key)
    if test["result"] == "valid":
        assert core.seal(iv, msg, aad) == sealed
        assert core.open(iv, sealed, aad) == msg
    else:
        assert test["result"] == "invalid"
        with pytest.raises(AuthenticationFailed):
            core.open(iv, sealed, aad)
        assert core.seal(iv, msg, aad) != sealed


def test_every_vector_outside_aes_256_with_96_bit_nonces_is_refused_by_the_core():
    refused: Counter[str] = Counter()
    for group, test in REFUSED:
        key, iv = bytes.fromhex(test["key"]), bytes.fromhex(test["iv"])
        aad, msg = bytes.fromhex(test["aad"]), bytes.fromhex(test["msg"])
        sealed = bytes.fromhex(test["ct"]) + bytes.fromhex(test["tag"])
        if group["keySize"] != 256:
            with pytest.raises(UnsupportedParameters):
                AES256GCM(key)
            refused["key size"] += 1
            continue
        core = AES256GCM(key)
        with pytest.raises(UnsupportedParameters):
            core.open(iv, sealed, aad)
        with pytest.raises(UnsupportedParameters):
            core.seal(iv, msg, aad)
        refused["nonce size"] += 1
    assert refused == {"key size": 211, "nonce size": 39}
