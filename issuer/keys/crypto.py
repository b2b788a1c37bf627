"""RSA keys as JWKs, RFC 7638 thumbprints, and the in-process cache of decrypted private keys."""

import base64
import hashlib
import json
import threading

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from issuer.keys import encryption

ALLOWED_KEY_SIZES = (2048, 3072, 4096)


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def rfc7638_thumbprint(jwk: dict) -> str:
    canonical = json.dumps({"e": jwk["e"], "kty": jwk["kty"], "n": jwk["n"]}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def rsa_public_jwk(modulus: int, exponent: int) -> dict:
    """The published JWK of an RSA public key, its kid the RFC 7638 thumbprint (whichever backend holds the key)."""
    jwk = {"kty": "RSA", "n": _b64url_uint(modulus), "e": _b64url_uint(exponent)}
    return {**jwk, "kid": rfc7638_thumbprint(jwk), "use": "sig", "alg": "RS256"}


def public_jwk(private_key: rsa.RSAPrivateKey) -> dict:
    numbers = private_key.public_key().public_numbers()
    return rsa_public_jwk(numbers.n, numbers.e)


def rsa_key_generate(key_size: int) -> tuple[dict, bytes]:
    """A new key: its public JWK and its private key as encrypted PKCS#8.

    A key whose thumbprint starts with "-" (one in 64) is drawn again: operators pass kids on command lines
    (`signing_keys activate --kid KID`), where argparse would read such a kid as an option.
    """
    if key_size not in ALLOWED_KEY_SIZES:
        raise ValueError(f"RSA key size must be one of {ALLOWED_KEY_SIZES}, not {key_size}.")
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    while public_jwk(private_key)["kid"].startswith("-"):
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return public_jwk(private_key), encryption.encrypt(pem)


_private_keys: dict[str, rsa.RSAPrivateKey] = {}
_private_keys_lock = threading.Lock()


def private_key_load(kid: str, ciphertext: bytes) -> rsa.RSAPrivateKey:
    """Decrypts once per process and key; the plaintext never leaves this process's memory."""
    key = _private_keys.get(kid)
    if key is None:
        with _private_keys_lock:
            key = _private_keys.get(kid)
            if key is None:
                key = serialization.load_pem_private_key(encryption.decrypt(ciphertext), password=None)
                _private_keys[kid] = key
    return key


def private_key_loaded(kid: str) -> rsa.RSAPrivateKey | None:
    return _private_keys.get(kid)


def private_key_forget(kid: str) -> None:
    _private_keys.pop(kid, None)
