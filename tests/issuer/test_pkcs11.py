"""The PKCS#11 backend against a real SoftHSM2 token: keys made and kept in the token, tokens signed there and
verified with the published key, the private key neither in the database nor extractable, and honest failure
when the token cannot be reached."""

import datetime as dt
import io
import json
import logging
import multiprocessing
import threading

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from django.core.management import call_command
from django.db import connection
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import AttributeReadOnly, AttributeSensitive, KeyUnextractable, PKCS11Error

from config.logging import redact
from issuer.checks import signing_keys_usable
from issuer.keys import hsm
from issuer.keys.crypto import rfc7638_thumbprint
from issuer.keys.selectors import signing_key_revocation_outcome
from issuer.keys.services import (
    SigningKeyRefused,
    signing_key_activate,
    signing_key_create,
    signing_key_policy_run,
    signing_key_purge,
    signing_key_retire,
    signing_keys_rewrap,
)
from issuer.keys.signers import Pkcs11Signer, signer_for
from issuer.models import SigningKey
from issuer.tasks import token_refresh
from issuer.tokens.services import signer_active
from tests.helpers import mint_token, sync
from tests.softhsm import USER_PIN

pytestmark = pytest.mark.django_db
State = SigningKey.State
# python-pkcs11 finalises an object search when it is collected; after a test closes the session under it (the
# token "going away") that finalisation fails, and the binding can only report it as an unraisable exception.
SESSION_CLOSED_UNDER_A_SEARCH = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture
def token_backend(pkcs11_token, settings):
    settings.ISSUER_SIGNING_KEY_BACKEND = "pkcs11"
    return pkcs11_token


@pytest.fixture
def token_key(signing_key, pkcs11_token):
    """A key made in the token and signing (the local key made before it retired)."""
    key = signing_key_create(reason="test", backend="pkcs11")
    return signing_key_activate(key.kid, force=True, reason="test: sign in the token")


def _private_objects(label: str | None = None):
    template = {Attribute.CLASS: ObjectClass.PRIVATE_KEY}
    if label:
        template[Attribute.LABEL] = label
    return hsm.hsm_call(lambda connection: list(connection.session.get_objects(template)))


def _token_object(key: SigningKey):
    return hsm.hsm_call(
        lambda connection: connection.session.get_key(
            object_class=ObjectClass.PRIVATE_KEY, id=bytes.fromhex(key.token_key_id)
        )
    )


def _unreachable(settings):
    """The token cannot be found any more (as when the HSM is away); the process's session is dropped with it."""
    settings.ISSUER_PKCS11_TOKEN_LABEL = "no-such-token"
    hsm.hsm_call(lambda connection: connection.session.close())  # the session goes with the token


def test_a_key_made_in_the_token_keeps_only_its_label_id_and_public_part(token_backend):
    key = signing_key_create(reason="test")
    assert key.backend == "pkcs11" and key.private_key_encrypted is None
    assert key.token_key_label.startswith(hsm.KEY_LABEL_PREFIX) and len(bytes.fromhex(key.token_key_id)) == 16
    assert key.kid == rfc7638_thumbprint(key.public_jwk) and set(key.public_jwk) == {
        "kty",
        "n",
        "e",
        "kid",
        "use",
        "alg",
    }
    assert len(_private_objects(key.token_key_label)) == 1


def test_every_column_of_a_token_keys_row_is_public(token_key):
    """The row, read with SELECT * (every column, whatever the model says), holds nothing but public facts."""
    table = connection.ops.quote_name(SigningKey._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} WHERE kid = %s", [token_key.kid])  # noqa: S608
        columns = [column[0] for column in cursor.description]
        row = dict(zip(columns, cursor.fetchone(), strict=True))
    public_jwk = json.loads(row.pop("public_jwk")) if isinstance(row["public_jwk"], str) else row.pop("public_jwk")
    assert public_jwk == token_key.public_jwk and set(public_jwk) == {"kty", "n", "e", "kid", "use", "alg"}
    assert row.pop("private_key_encrypted") is None
    assert row.pop("token_key_id") == token_key.token_key_id and row.pop("token_key_label") == token_key.token_key_label
    times = {"created_at", "activated_at", "retired_at", "revoked_at"}
    assert set(row) == {"id", "kid", "algorithm", "key_size", "backend", "state"} | times
    assert (row["kid"], row["algorithm"], row["key_size"], row["backend"], row["state"]) == (
        token_key.kid,
        "RS256",
        2048,
        "pkcs11",
        "active",
    )


def test_the_token_refuses_to_hand_out_the_private_key(token_key):
    private = _token_object(token_key)
    assert private[Attribute.SENSITIVE] and private[Attribute.ALWAYS_SENSITIVE]
    assert not private[Attribute.EXTRACTABLE] and private[Attribute.NEVER_EXTRACTABLE]
    for secret in (Attribute.PRIVATE_EXPONENT, Attribute.PRIME_1, Attribute.PRIME_2):
        with pytest.raises(AttributeSensitive):
            private[secret]

    def wrap_out(connection):
        wrapping = connection.session.generate_key(KeyType.AES, 256, template={Attribute.TOKEN: False})
        target = connection.session.get_key(
            object_class=ObjectClass.PRIVATE_KEY, id=bytes.fromhex(token_key.token_key_id)
        )
        with pytest.raises(KeyUnextractable):  # asked inside the call: the token's own refusal, not a retry's
            wrapping.wrap_key(target, mechanism=Mechanism.AES_KEY_WRAP_PAD)
        return True

    assert hsm.hsm_call(wrap_out)
    with pytest.raises((AttributeReadOnly, PKCS11Error)):
        private[Attribute.EXTRACTABLE] = True
    assert not _token_object(token_key)[Attribute.EXTRACTABLE]


def test_a_synced_token_is_signed_in_the_token_and_verifies_with_the_jwks(client, activated, token_key):
    _, license_key = activated
    _, body = sync(client, license_key)
    token = body["data"]["cloudConnectorAccess"]["serviceToken"]["token"]
    assert jwt.get_unverified_header(token)["kid"] == token_key.kid
    keys = jwt.PyJWKSet.from_dict(client.get("/oauth/discovery/keys").json())
    claims = jwt.decode(token, keys[token_key.kid].key, algorithms=["RS256"], audience="gitlab-ai-gateway")
    assert claims["gitlab_realm"] == "self-managed"
    assert isinstance(signer_active(), Pkcs11Signer)


def test_threads_sign_at_once_and_every_signature_verifies(token_key):
    signer = signer_for(token_key)
    public = jwt.PyJWK(token_key.public_jwk).key
    results, errors = [], []

    def sign_many(worker):
        try:
            for n in range(15):
                message = f"worker {worker} message {n}".encode()
                results.append((message, signer.sign(message)))
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=sign_many, args=(worker,)) for worker in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(results) == 90
    for message, signature in results:
        public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())


def _sign_in_child(key_id, pipe):
    pipe.send(hsm.hsm_sign(key_id, b"signed in a forked worker"))


def test_a_forked_worker_opens_its_own_session(token_key):
    """A child that inherits an open session (as a gunicorn worker inherits the master's) initialises the library
    and opens a session of its own."""
    signer_for(token_key).sign(b"the parent signs first")
    parent, child = multiprocessing.get_context("fork").Pipe()
    process = multiprocessing.get_context("fork").Process(target=_sign_in_child, args=(token_key.token_key_id, child))
    process.start()
    process.join(60)
    assert process.exitcode == 0
    signature = parent.recv()
    jwt.PyJWK(token_key.public_jwk).key.verify(
        signature, b"signed in a forked worker", padding.PKCS1v15(), hashes.SHA256()
    )
    assert signer_for(token_key).sign(b"the parent still signs")


def test_a_redrawn_key_leaves_nothing_in_the_token(token_backend, monkeypatch):
    drawn = []
    real = hsm.rsa_public_jwk

    def first_kid_starts_with_a_dash(modulus, exponent):
        jwk = real(modulus, exponent)
        drawn.append(jwk)
        return {**jwk, "kid": "-" + jwk["kid"][1:]} if len(drawn) == 1 else jwk

    monkeypatch.setattr(hsm, "rsa_public_jwk", first_kid_starts_with_a_dash)
    before = len(_private_objects())
    key = signing_key_create(reason="test")
    # A real kid also starts with a dash one time in 64, so the count of redraws is not fixed.
    assert len(drawn) >= 2 and key.kid == drawn[-1]["kid"] and not key.kid.startswith("-")
    assert len(_private_objects()) == before + 1
    assert len(_private_objects(key.token_key_label)) == 1


@pytest.mark.usefixtures("local_signing_keys")
def test_rewrap_skips_keys_in_the_token(token_key):
    local = SigningKey.objects.filter(backend="local").count()
    assert local == 1
    assert signing_keys_rewrap().keys == local
    assert SigningKey.objects.get(kid=token_key.kid).private_key_encrypted is None


def test_a_purge_destroys_the_object_in_the_token(token_backend, signing_key):
    key = signing_key_create(reason="test")
    signing_key_retire(key.kid)
    signing_key_purge(key.kid, force=True, reason="test: purge now")
    assert not SigningKey.objects.filter(kid=key.kid).exists()
    assert _private_objects(key.token_key_label) == []


@SESSION_CLOSED_UNDER_A_SEARCH
def test_a_purge_with_the_token_unreachable_refuses_and_keeps_the_key(token_backend, signing_key, settings):
    key = signing_key_create(reason="test")
    signing_key_retire(key.kid)
    label = settings.ISSUER_PKCS11_TOKEN_LABEL
    _unreachable(settings)
    with pytest.raises(SigningKeyRefused, match="cannot be destroyed now"):
        signing_key_purge(key.kid, force=True, reason="test: purge now")
    assert SigningKey.objects.filter(kid=key.kid, state=State.RETIRED).exists()
    settings.ISSUER_PKCS11_TOKEN_LABEL = label
    signing_key_purge(key.kid, force=True, reason="test: purge now")
    assert _private_objects(key.token_key_label) == []


def test_minting_with_the_token_unreachable_is_a_503_and_warm_syncs_still_serve(client, activated, token_key, settings):
    instance, license_key = activated
    _, warm = sync(client, license_key)  # a stored token, signed while the token was there
    stored = warm["data"]["cloudConnectorAccess"]["serviceToken"]["token"]
    label = settings.ISSUER_PKCS11_TOKEN_LABEL
    _unreachable(settings)

    response, body = sync(client, license_key)
    assert response.status_code == 200 and body["data"]["cloudConnectorAccess"]["serviceToken"]["token"] == stored

    instance.gitlab_version = "17.10.0"  # a new fingerprint: the next sync must mint
    instance.save()
    response, body = sync(client, license_key, gitlab_version="17.9.0")
    assert response.status_code == 503 and response["Retry-After"]
    rest = client.post(
        "/api/v1/service_access_tokens",
        data={"gitlab_version": "17.8.0"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {license_key}",
    )
    assert rest.status_code == 503 and rest["Retry-After"]
    ready = client.get("/readyz").json()
    assert ready["status"] == "unavailable"
    assert (
        ready["checks"]["signing_token"]["ok"] is False
        and "no-such-token" in ready["checks"]["signing_token"]["detail"]
    )

    settings.ISSUER_PKCS11_TOKEN_LABEL = label  # the token is back: no restart, the next call opens a session
    response, body = sync(client, license_key, gitlab_version="17.9.0")
    assert response.status_code == 200 and body["data"]["cloudConnectorAccess"]["serviceToken"]["token"] != stored
    assert client.get("/readyz").json()["checks"]["signing_token"] == {"ok": True, "detail": "ok"}


def test_a_lost_session_is_opened_again_without_a_restart(token_key):
    signer = signer_for(token_key)
    signer.sign(b"before")
    hsm.hsm_call(lambda connection: connection.session.close())  # the session is gone under our feet
    signature = signer.sign(b"after")
    jwt.PyJWK(token_key.public_jwk).key.verify(signature, b"after", padding.PKCS1v15(), hashes.SHA256())


def test_a_revoke_with_the_token_unreachable_withdraws_the_key_and_reports_the_re_mint_pending(
    client, token_key, token_backend, settings
):
    """New keys are made in the token, which is away: the compromised key is withdrawn all the same, nothing signs
    until the token is back (the policy job then makes a key), and the re-mint waits for that."""
    _unreachable(settings)
    out = io.StringIO()
    call_command(
        "signing_keys", "revoke", "--kid", token_key.kid, "--reason", "test: compromised", "--json", stdout=out
    )
    report = json.loads(out.getvalue())
    assert report["state"] == "revoked" and report["remint"] == "pending" and report["signing_now"] is None
    assert token_key.kid not in {key["kid"] for key in client.get("/oauth/discovery/keys").json()["keys"]}
    assert signing_key_revocation_outcome()["remint"] == "pending"

    settings.ISSUER_PKCS11_TOKEN_LABEL = token_backend["ISSUER_PKCS11_TOKEN_LABEL"]  # the token is back
    signing_key_policy_run()
    token_refresh()
    successor = SigningKey.objects.get(state=State.ACTIVE)
    assert successor.backend == "pkcs11" and signing_key_revocation_outcome()["remint"] == "queued"


def test_the_pin_never_reaches_a_log_line(token_key, caplog):
    signer_for(token_key).sign(b"the PIN has been read")
    assert redact(f"opening with pin {USER_PIN}") == "opening with pin [REDACTED]"
    logger = logging.getLogger("issuer.keys.hsm")
    from config.logging import RedactSecretsFilter

    record = logger.makeRecord("issuer.keys.hsm", logging.WARNING, __file__, 1, "login %s", (USER_PIN,), None)
    RedactSecretsFilter().filter(record)
    assert USER_PIN not in record.getMessage()


@SESSION_CLOSED_UNDER_A_SEARCH
def test_a_pin_file_others_can_read_is_refused(token_backend, settings, tmp_path):
    loose = tmp_path / "pin"
    loose.write_text(USER_PIN)
    loose.chmod(0o644)
    settings.ISSUER_PKCS11_PIN_FILE = str(loose)
    assert "issuer.E008" in {problem.id for problem in signing_keys_usable(databases=["default"])}
    hsm.hsm_call(lambda connection: connection.session.close())
    with pytest.raises(hsm.TokenUnavailable, match="readable by others"):
        hsm.hsm_sign("00", b"x")


def test_new_keys_need_the_token_configured(settings, db):
    settings.ISSUER_SIGNING_KEY_BACKEND = "pkcs11"
    settings.ISSUER_PKCS11_MODULE = ""
    problems = [problem.msg for problem in signing_keys_usable(databases=["default"]) if problem.id == "issuer.E007"]
    assert any("ISSUER_PKCS11_MODULE is not set" in message for message in problems)


def test_the_command_makes_keys_where_the_setting_says(token_backend):
    out = io.StringIO()
    call_command("signing_keys", "create", "--json", stdout=out)
    kid = json.loads(out.getvalue())["kid"]
    assert SigningKey.objects.get(kid=kid).backend == "pkcs11"


def test_minted_tokens_of_both_backends_verify_during_the_overlap(client, activated, signing_key, token_backend):
    instance, _ = activated
    local_token = mint_token(instance).token
    key = signing_key_create(reason="test")
    signing_key_activate(key.kid, force=True, reason="test: move to the token")
    token_token = mint_token(instance, at=dt.datetime.now(dt.UTC)).token
    keys = jwt.PyJWKSet.from_dict(client.get("/oauth/discovery/keys").json())
    for token in (local_token, token_token):
        kid = jwt.get_unverified_header(token)["kid"]
        jwt.decode(token, keys[kid].key, algorithms=["RS256"], audience="gitlab-ai-gateway")
    assert {jwt.get_unverified_header(t)["kid"] for t in (local_token, token_token)} == {signing_key.kid, key.kid}


@pytest.mark.usefixtures("local_signing_keys")
def test_operators_see_where_each_key_lives(token_key, signing_key):
    out = io.StringIO()
    call_command("signing_keys", "list", "--json", stdout=out)
    listed = {key["kid"]: key for key in json.loads(out.getvalue())}
    assert listed[token_key.kid]["backend"] == "pkcs11"
    assert listed[token_key.kid]["token_key_label"] == token_key.token_key_label
    assert listed[signing_key.kid]["backend"] == "local" and listed[signing_key.kid]["token_key_label"] == ""
