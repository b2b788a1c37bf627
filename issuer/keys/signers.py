"""Signers: what signs a token. A signer is a `kid` and `sign(signing_input) -> signature` (RS256, that is
RSASSA-PKCS1-v1_5 with SHA-256); the token code builds the compact JWS around it (`issuer.tokens.jws`), so the
private key itself never has to be handed to the code that mints, and a backend that never lets it out of its
boundary signs the same tokens.

One signer per key and process, made on first use and kept (`signer_for`); a revoke or a purge forgets it."""

import threading
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from issuer.keys import crypto, hsm
from issuer.models import SigningKey


class Signer(Protocol):
    kid: str

    def sign(self, signing_input: bytes) -> bytes:
        """The RS256 signature of `signing_input` (the JWS's `header.payload`, both base64url)."""


@dataclass(frozen=True)
class LocalSigner:
    """A key kept encrypted in the database, decrypted into this process once."""

    kid: str
    private_key: rsa.RSAPrivateKey = field(repr=False)

    def sign(self, signing_input: bytes) -> bytes:
        return self.private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())


@dataclass(frozen=True)
class Pkcs11Signer:
    """A key inside the PKCS#11 token: every signature is asked of the token (`issuer.keys.hsm`)."""

    kid: str
    key_id: str  # CKA_ID, hex

    def sign(self, signing_input: bytes) -> bytes:
        return hsm.hsm_sign(self.key_id, signing_input)


_signers: dict[str, Signer] = {}
_signers_lock = threading.Lock()


def signer_loaded(kid: str) -> Signer | None:
    """This process's signer for `kid`, if it made one already (no query)."""
    return _signers.get(kid)


def signer_for(key: SigningKey) -> Signer:
    """The signer of `key` (its `kid` and private part loaded), made once per process."""
    signer = _signers.get(key.kid)
    if signer is None:
        with _signers_lock:
            signer = _signers.get(key.kid)
            if signer is None:
                if key.backend == SigningKey.Backend.PKCS11:
                    signer = Pkcs11Signer(key.kid, key.token_key_id)
                else:
                    signer = LocalSigner(key.kid, crypto.private_key_load(key.kid, key.private_key_encrypted))
                _signers[key.kid] = signer
    return signer


def signer_forget(kid: str) -> None:
    """A revoked or purged key signs nothing more in this process."""
    _signers.pop(kid, None)
    crypto.private_key_forget(kid)
