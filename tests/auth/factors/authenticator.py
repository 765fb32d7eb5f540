"""A software WebAuthn authenticator for the tests: P-256 keys (cryptography), CBOR (cbor2).

It answers `navigator.credentials.create/get` options as a browser and an authenticator would
together: clientDataJSON for an origin, authenticator data for an RP ID, `none` or `packed`
(self) attestation, an assertion signature, and a sign counter that a clone can roll back.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from shared.access_tokens import b64url_encode

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40
ORIGIN = "http://localhost:8080"  # APP_BASE_URL of the test settings
RP_ID = "localhost"


@dataclass
class SoftAuthenticator:
    """One credential on one authenticator."""

    user_verifying: bool = True
    synced: bool = False
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    credential_id: bytes = field(default_factory=lambda: os.urandom(32))
    sign_count: int = 0
    user_handle: str | None = None

    def clone(self) -> SoftAuthenticator:
        """The same key and counter, as an attacker's copy would have them."""
        return copy.deepcopy(self)

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps(
            {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
        )

    def _flags(self, attested: bool, verified: bool) -> int:
        flags = UP | (UV if verified else 0) | (AT if attested else 0)
        return flags | (BE | BS if self.synced else 0)

    def _sign(self, data: bytes) -> bytes:
        return self.key.sign(data, ec.ECDSA(hashes.SHA256()))

    @staticmethod
    def _client_data(kind: str, challenge: str, origin: str) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}
        ).encode()

    def create(
        self, options: dict[str, Any], *, fmt: str = "none", origin: str = ORIGIN, rp_id: str | None = None
    ) -> dict[str, Any]:
        """A registration response (PublicKeyCredential JSON) to creation options."""
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        rp_hash = hashlib.sha256((rp_id or options["rp"]["id"]).encode()).digest()
        auth_data = (
            rp_hash
            + bytes([self._flags(True, self.user_verifying)])
            + self.sign_count.to_bytes(4, "big")
            + bytes(16)  # AAGUID
            + len(self.credential_id).to_bytes(2, "big")
            + self.credential_id
            + self._cose_key()
        )
        statement: dict[str, Any] = {}
        if fmt == "packed":
            statement = {"alg": -7, "sig": self._sign(auth_data + hashlib.sha256(client_data).digest())}
        attestation = cbor2.dumps({"fmt": fmt, "attStmt": statement, "authData": auth_data})
        self.user_handle = options["user"]["id"]
        return {
            "id": b64url_encode(self.credential_id),
            "rawId": b64url_encode(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url_encode(client_data),
                "attestationObject": b64url_encode(attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        }

    def get(
        self,
        options: dict[str, Any],
        *,
        origin: str = ORIGIN,
        rp_id: str | None = None,
        verify_user: bool | None = None,
        sign_count: int | None = None,
    ) -> dict[str, Any]:
        """An assertion (PublicKeyCredential JSON) to request options; the counter advances."""
        self.sign_count = self.sign_count + 1 if sign_count is None else sign_count
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        verified = self.user_verifying if verify_user is None else verify_user
        auth_data = (
            hashlib.sha256((rp_id or options.get("rpId") or RP_ID).encode()).digest()
            + bytes([self._flags(False, verified)])
            + self.sign_count.to_bytes(4, "big")
        )
        signature = self._sign(auth_data + hashlib.sha256(client_data).digest())
        return {
            "id": b64url_encode(self.credential_id),
            "rawId": b64url_encode(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url_encode(client_data),
                "authenticatorData": b64url_encode(auth_data),
                "signature": b64url_encode(signature),
                "userHandle": self.user_handle,
            },
            "clientExtensionResults": {},
        }
