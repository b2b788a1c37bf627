"""Key-encryption-key rotation without an outage: deploy the new key list, rewrap, then drop the old key. A
process still holding the old list meanwhile keeps answering syncs (it re-mints what it cannot decrypt)."""

import json

import jwt
import pytest
from cryptography.fernet import Fernet
from django.core.cache import cache

from issuer.keys import crypto
from issuer.keys.services import signing_keys_rewrap
from issuer.models import IssuedToken
from tests.helpers import sync

pytestmark = pytest.mark.django_db


def test_a_process_with_the_old_key_list_re_mints_instead_of_failing(client, activated, settings):
    _, key = activated
    _, first = sync(client, key)
    old_list = list(settings.KEY_ENCRYPTION_KEYS)
    settings.KEY_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *old_list]
    signing_keys_rewrap()  # the stored token is now under the new key only
    cache.clear()  # the sync reads it from the database (a cached state still holds the old ciphertext)
    settings.KEY_ENCRYPTION_KEYS = old_list  # a replica that has not been redeployed yet
    response, body = sync(client, key)
    assert response.status_code == 200
    token = body["data"]["cloudConnectorAccess"]["serviceToken"]["token"]
    assert token != first["data"]["cloudConnectorAccess"]["serviceToken"]["token"]
    assert jwt.decode(token, options={"verify_signature": False})["sub"]
    assert IssuedToken.objects.count() == 2
    rest = client.post(
        "/api/v1/service_access_tokens",
        data=json.dumps({}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert rest.status_code == 200


@pytest.mark.usefixtures("local_signing_keys")
def test_a_signing_key_this_process_cannot_decrypt_is_a_503_not_a_500(client, activated, settings):
    _, key = activated
    settings.KEY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # neither the stored token nor the key decrypts
    crypto._private_keys.clear()  # a fresh process: nothing decrypted yet
    rest = client.post(
        "/api/v1/service_access_tokens", data="{}", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}"
    )
    assert rest.status_code == 503 and "retry" in rest.json()["detail"].lower() and rest["Retry-After"]
    response, body = sync(client, key)
    assert response.status_code == 503 and "retry" in body["errors"][0]["message"].lower()
    assert "KEY_ENCRYPTION_KEYS" not in json.dumps(body) + rest.content.decode(), "the operator's matter, not shown"
