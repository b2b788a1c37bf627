"""The compact JWS is built by us around a signer: byte for byte what PyJWT writes with the private key itself."""

import datetime as dt

import jwt
import orjson
import pytest

from issuer.keys.signers import LocalSigner, signer_for
from issuer.models import SigningKey
from issuer.tokens.jws import jws_compact
from issuer.tokens.services import service_access_token_sign, signer_active
from subscriptions.selectors import instance_entitlements
from tests.helpers import sync

pytestmark = pytest.mark.django_db


@pytest.mark.usefixtures("local_signing_keys")
def test_a_token_is_byte_for_byte_the_one_pyjwt_signs_with_the_local_key(activated):
    instance, _ = activated
    at = dt.datetime.now(dt.UTC)
    signer = signer_active()
    assert isinstance(signer, LocalSigner)
    minted = service_access_token_sign(
        instance, instance_entitlements(instance, at), at=at, reason="manual", signer=signer
    )
    claims = orjson.loads(jwt.utils.base64url_decode(minted.token.split(".")[1]))
    by_pyjwt = jwt.api_jws.encode(
        orjson.dumps(claims), signer.private_key, algorithm="RS256", headers={"kid": signer.kid, "typ": "JWT"}
    )
    assert minted.token == by_pyjwt
    assert jwt.get_unverified_header(minted.token) == {"alg": "RS256", "kid": signer.kid, "typ": "JWT"}


@pytest.mark.usefixtures("local_signing_keys")
def test_any_payload_and_kid_gives_pyjwts_bytes(signing_key):
    signer = signer_for(SigningKey.objects.get(kid=signing_key.kid))
    for payload in (b"{}", b'{"a":"\xc3\xa9","n":1}', orjson.dumps({"x": "y" * 1001})):
        expected = jwt.api_jws.encode(
            payload, signer.private_key, algorithm="RS256", headers={"kid": signer.kid, "typ": "JWT"}
        )
        assert jws_compact(payload, signer) == expected


def test_a_synced_token_verifies_with_the_published_key(activated, client):
    _, license_key = activated
    _, body = sync(client, license_key)
    token = body["data"]["cloudConnectorAccess"]["serviceToken"]["token"]
    public = jwt.PyJWK(SigningKey.objects.get(state=SigningKey.State.ACTIVE).public_jwk).key
    claims = jwt.decode(token, public, algorithms=["RS256"], options={"verify_aud": False})
    assert claims["gitlab_realm"] == "self-managed"


def test_a_signer_never_shows_its_private_key(signing_key):
    signer = signer_for(SigningKey.objects.get(kid=signing_key.kid))
    assert "private" not in repr(signer).lower()
    assert signing_key.kid in repr(signer)
