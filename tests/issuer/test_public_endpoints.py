import base64
import datetime as dt
import json

import pytest
import time_machine

from issuer.keys.crypto import rfc7638_thumbprint
from issuer.keys.services import signing_key_create, signing_key_revoke
from issuer.models import SigningKey

pytestmark = pytest.mark.django_db
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def test_discovery_document(client, settings):
    response = client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["Cache-Control"] == "public, max-age=3600"
    doc = response.json()
    assert doc["issuer"] == settings.ISSUER_URL
    assert doc["jwks_uri"] == f"{settings.ISSUER_URL}/oauth/discovery/keys"
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    again = client.get("/.well-known/openid-configuration", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304 and again["ETag"] == response["ETag"]


def test_jwks_body_and_headers_exact(client, signing_key):
    pending = signing_key_create()
    response = client.get("/oauth/discovery/keys")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["Cache-Control"] == "public, max-age=3600"
    assert response["ETag"].startswith('"') and response["ETag"].endswith('"')
    keys = response.json()["keys"]
    assert [k["kid"] for k in keys] == [signing_key.kid, pending.kid]
    for key in keys:
        assert set(key) == {"kty", "kid", "n", "e", "use", "alg"}
        assert not PRIVATE_MEMBERS & set(key)
        assert (key["kty"], key["use"], key["alg"], key["e"]) == ("RSA", "sig", "RS256", "AQAB")
        assert key["kid"] == rfc7638_thumbprint(key)
        assert len(base64.urlsafe_b64decode(key["n"] + "==")) * 8 == 2048


def test_jwks_304_and_etag_changes_with_the_key_set(client, signing_key):
    first = client.get("/oauth/discovery/keys")
    assert client.get("/oauth/discovery/keys", HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    pending = signing_key_create()
    second = client.get("/oauth/discovery/keys", HTTP_IF_NONE_MATCH=first["ETag"])
    assert second.status_code == 200 and second["ETag"] != first["ETag"]
    signing_key_revoke(pending.kid, reason="test: revoke")
    third = client.get("/oauth/discovery/keys")
    assert [k["kid"] for k in third.json()["keys"]] == [signing_key.kid]
    assert third["ETag"] == first["ETag"]


def test_jwks_is_served_from_cache_without_queries(client, signing_key, django_assert_num_queries):
    client.get("/oauth/discovery/keys")
    with django_assert_num_queries(0):
        assert client.get("/oauth/discovery/keys").status_code == 200


def test_change_by_another_process_reaches_the_jwks(client, signing_key):
    """Another process (CLI, worker, web replica) changes keys with its own signal: ours only sees the database
    and the shared cache, so a raw database write plus the shared-cache invalidation must be enough."""
    from issuer.keys.selectors import keyset_invalidate

    client.get("/oauth/discovery/keys")
    SigningKey.objects.filter(kid=signing_key.kid).update(state=SigningKey.State.REVOKED)  # no signals
    keyset_invalidate()  # what the other process's commit hook does in the shared cache
    assert client.get("/oauth/discovery/keys").json() == {"keys": []}


def test_no_throttle_and_no_auth_on_public_endpoints(client, signing_key, settings):
    """Validators everywhere fetch the key set: with the instance doors' limit tight and spent from this address, the
    JWKS and the discovery document still answer it (Python's clock frozen, so the window cannot reset)."""
    settings.INSTANCE_RATE_PER_ADDRESS = "3/m"
    with time_machine.travel(dt.datetime.now(dt.UTC), tick=False):
        doors = [
            client.post("/graphql", data={"query": "{ __typename }"}, content_type="application/json").status_code
            for _ in range(4)
        ]
        assert doors == [200, 200, 200, 429], "the instance door's limit is spent"
        for _ in range(20):
            assert client.get("/oauth/discovery/keys").status_code == 200
            assert client.get("/.well-known/openid-configuration").status_code == 200
        assert (
            client.post("/graphql", data={"query": "{ __typename }"}, content_type="application/json").status_code
            == 429
        )


@pytest.mark.usefixtures("local_signing_keys")
def test_private_key_never_in_any_public_response(client, signing_key):
    from issuer.keys import encryption

    pem = encryption.decrypt(signing_key.private_key_encrypted).decode()
    secret_line = pem.splitlines()[1]
    for path in ("/oauth/discovery/keys", "/.well-known/openid-configuration", "/metrics", "/readyz"):
        assert secret_line not in client.get(path).content.decode()
    assert "d" not in json.loads(client.get("/oauth/discovery/keys").content)["keys"][0]


def test_head_is_answered_like_get(client, signing_key):
    get = client.get("/oauth/discovery/keys")
    head = client.head("/oauth/discovery/keys")
    assert head.status_code == 200 and head["ETag"] == get["ETag"] and head.content == b""
    assert client.post("/oauth/discovery/keys").status_code == 405


def test_api_schema_and_docs_are_for_staff_and_served_without_a_cdn(client, django_user_model, db):
    from tests.helpers import role

    assert client.get("/api/schema/").status_code in (401, 403)
    assert client.get("/api/docs/", HTTP_AUTHORIZATION="Token iss_wrong").status_code in (401, 403)
    staff = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    staff.groups.add(role("viewer"))  # staff with a role: a staff account without one is refused
    client.force_login(staff)
    assert client.get("/api/schema/").status_code == 200
    docs = client.get("/api/docs/").content.decode()
    assert "drf_spectacular_sidecar/swagger-ui-dist" in docs
    assert "cdn" not in docs.lower() and "https://" not in docs


def test_api_docs_send_a_browser_without_a_session_to_sign_in_and_back(client):
    response = client.get("/api/docs/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/api/docs/"
