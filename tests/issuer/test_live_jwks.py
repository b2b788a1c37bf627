"""A token verifies through PyJWT's real JWKS client against the live test server, as a validator would."""

import pytest
from jwt import PyJWKClient
from jwt import decode as jwt_decode

from issuer.keys.services import signing_key_create
from tests.helpers import mint_token


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_token_verifies_through_pyjwkclient(live_server, activated, settings):
    settings.ISSUER_URL = live_server.url
    signing_key_create()  # a pending key is published too: the client must pick by kid
    instance, _ = activated
    token = mint_token(instance).token
    client = PyJWKClient(f"{live_server.url}/oauth/discovery/keys", cache_keys=False)
    signing_key = client.get_signing_key_from_jwt(token)
    claims = jwt_decode(
        token, signing_key.key, algorithms=["RS256"], audience="gitlab-ai-gateway", issuer=live_server.url
    )
    assert claims["sub"] == str(instance.instance_identifier)
    assert len(client.get_jwk_set().keys) == 2
