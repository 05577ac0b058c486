"""Ed25519 on the laptop via `cryptography`: the provider the simulator and host tools hand to plexnode."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


class HostCrypto:
    def public_key(self, seed: bytes) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(bytes(seed)).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def sign(self, seed: bytes, message: bytes) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(bytes(seed)).sign(bytes(message))

    def verify(self, public: bytes, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(bytes(public)).verify(bytes(signature), bytes(message))
            return True
        except (InvalidSignature, ValueError):
            return False
