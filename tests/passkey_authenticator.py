"""A software passkey authenticator: what a phone or security key would answer, built with `cryptography`.

It holds an EC P-256 key (COSE alg -7, ES256), answers a registration with "none" attestation and
an assertion with authenticator data, clientDataJSON and an ECDSA signature, exactly as WebAuthn
Level 3 lays them out, so that the agent's verification is exercised for real. Each answer may be
bent the way an attacker would bend it: another origin or RP id, a counter, no user verification.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, AT = 0x01, 0x04, 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SoftAuthenticator:
    """One passkey on one device: its key, credential id, counter and the user handle it was given."""

    rp_id: str
    origin: str
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    credential_id: bytes = field(default_factory=lambda: os.urandom(32))
    sign_count: int = 0
    user_handle: bytes | None = None

    def cose_public_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin or self.origin,
                           "crossOrigin": False}).encode()

    def register(self, options: dict[str, Any], *, origin: str | None = None, rp_id: str | None = None,
                 user_verified: bool = True) -> dict[str, Any]:
        """navigator.credentials.create()'s answer to the agent's options, as the page posts it."""
        self.user_handle = unb64url(options["user"]["id"])
        flags = UP | AT | (UV if user_verified else 0)
        attested = bytes(16) + struct.pack(">H", len(self.credential_id)) + self.credential_id + self.cose_public_key()
        auth_data = hashlib.sha256((rp_id or self.rp_id).encode()).digest() + bytes([flags]) \
            + struct.pack(">I", self.sign_count) + attested
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": b64url(self.credential_id), "rawId": b64url(self.credential_id), "type": "public-key",
            "response": {"clientDataJSON": b64url(self._client_data("webauthn.create", options["challenge"], origin)),
                         "attestationObject": b64url(attestation), "transports": ["internal"]},
            "clientExtensionResults": {}, "authenticatorAttachment": "platform",
        }

    def assertion(self, options: dict[str, Any], *, origin: str | None = None, rp_id: str | None = None,
                  sign_count: int | None = None, user_verified: bool = True,
                  user_handle: bytes | None = None) -> dict[str, Any]:
        """navigator.credentials.get()'s answer; the counter moves on by one unless given."""
        if sign_count is None:
            self.sign_count += 1
            sign_count = self.sign_count
        flags = UP | (UV if user_verified else 0)
        auth_data = hashlib.sha256((rp_id or self.rp_id).encode()).digest() + bytes([flags]) \
            + struct.pack(">I", sign_count)
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        handle = user_handle if user_handle is not None else self.user_handle
        return {
            "id": b64url(self.credential_id), "rawId": b64url(self.credential_id), "type": "public-key",
            "response": {"clientDataJSON": b64url(client_data), "authenticatorData": b64url(auth_data),
                         "signature": b64url(signature), "userHandle": b64url(handle) if handle else None},
            "clientExtensionResults": {}, "authenticatorAttachment": "platform",
        }
