"""The compact JWS (RFC 7515 §7.1) of a token, built here around a signer: `base64url(header) "."
base64url(payload) "." base64url(signature)`. PyJWT would need the private key itself; a signer only signs.

The header is the one PyJWT writes for the same call (`{"alg":"RS256","kid":…,"typ":"JWT"}`, keys sorted, no
spaces), so tokens are byte for byte what they were (tests/issuer/test_jws.py compares them)."""

import base64
import functools
import json

from issuer.keys.signers import Signer


def base64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


@functools.lru_cache(maxsize=64)
def _encoded_header(kid: str) -> bytes:
    header = {"alg": "RS256", "kid": kid, "typ": "JWT"}
    return base64url(json.dumps(header, separators=(",", ":"), sort_keys=True).encode())


def jws_compact(payload: bytes, signer: Signer) -> str:
    """The token for `payload` (the claims as serialised JSON) signed by `signer`."""
    signing_input = _encoded_header(signer.kid) + b"." + base64url(payload)
    return (signing_input + b"." + base64url(signer.sign(signing_input))).decode("ascii")
