import base64
import datetime as dt
import io
import json
import logging
import uuid

import pytest
import time_machine
from cryptography.fernet import Fernet
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction

from issuer.keys import crypto, encryption
from issuer.keys.selectors import signing_key_timeline
from issuer.keys.services import (
    SigningKeyRefused,
    signing_key_activate,
    signing_key_create,
    signing_key_ensure_active,
    signing_key_policy_run,
    signing_key_purge,
    signing_key_retire,
    signing_key_revoke,
    signing_keys_rewrap,
)
from issuer.models import IssuedToken, SigningKey
from tests.helpers import postgres_only, run_at_once

pytestmark = pytest.mark.django_db
State = SigningKey.State
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_first_start_creates_and_activates_one_key():
    key = signing_key_ensure_active(at=T0)
    assert key.state == State.ACTIVE and key.activated_at == T0
    assert signing_key_ensure_active(at=T0 + dt.timedelta(hours=1)).kid == key.kid
    assert SigningKey.objects.count() == 1


@pytest.mark.usefixtures("local_signing_keys")
def test_key_material_is_encrypted_and_kid_is_the_thumbprint():
    key = signing_key_create(at=T0)
    assert key.kid == crypto.rfc7638_thumbprint(key.public_jwk)
    assert set(key.public_jwk) == {"kty", "n", "e", "kid", "use", "alg"}
    assert b"PRIVATE KEY" not in bytes(key.private_key_encrypted)
    assert encryption.decrypt(key.private_key_encrypted).startswith(b"-----BEGIN PRIVATE KEY-----")
    assert "PRIVATE" not in repr(key) and key.kid in repr(key)


@pytest.mark.parametrize("size", crypto.ALLOWED_KEY_SIZES)
def test_every_allowed_key_size_makes_a_key_of_that_size(size):
    assert size in (2048, 3072, 4096)
    key = signing_key_create(key_size=size)
    assert key.key_size == size
    modulus = int.from_bytes(base64.urlsafe_b64decode(key.public_jwk["n"] + "=" * (-len(key.public_jwk["n"]) % 4)))
    assert modulus.bit_length() == size, "the stored size is the real modulus"


@pytest.mark.parametrize("size", [512, 1024, 2047, 3000, 8192])
def test_other_key_sizes_are_refused(size):
    with pytest.raises(ValueError, match="must be one of"):
        signing_key_create(key_size=size)
    assert not SigningKey.objects.exists()


def test_early_activation_is_refused_with_the_reason():
    signing_key_ensure_active(at=T0)
    pending = signing_key_create(at=T0)
    with pytest.raises(SigningKeyRefused, match=r"published for 1\.0 h; .* only sign after 2\.0 days .*Use force"):
        signing_key_activate(pending.kid, at=T0 + dt.timedelta(hours=1))
    assert SigningKey.objects.get(kid=pending.kid).state == State.PENDING
    with pytest.raises(SigningKeyRefused, match="needs a reason"):
        signing_key_activate(pending.kid, at=T0 + dt.timedelta(hours=1), force=True, reason="  ")
    signing_key_activate(pending.kid, at=T0 + dt.timedelta(hours=1), force=True, reason="test: forced")
    assert SigningKey.objects.get(kid=pending.kid).state == State.ACTIVE


def test_the_first_key_activates_without_force_nothing_else_signs():
    """With no key signing, waiting for the lead would only prolong the outage: no force, so no reason needed."""
    pending = signing_key_create(at=T0)
    signing_key_activate(pending.kid, at=T0 + dt.timedelta(minutes=1))
    assert SigningKey.objects.get(kid=pending.kid).state == State.ACTIVE


def test_activation_after_the_lead_retires_the_old_key():
    old = signing_key_ensure_active(at=T0)
    new = signing_key_create(at=T0)
    signing_key_activate(new.kid, at=T0 + dt.timedelta(hours=48))
    old.refresh_from_db()
    assert old.state == State.RETIRED and old.retired_at == T0 + dt.timedelta(hours=48)
    assert SigningKey.objects.filter(state=State.ACTIVE).get().kid == new.kid


def test_only_pending_keys_activate():
    active = signing_key_ensure_active(at=T0)
    with pytest.raises(SigningKeyRefused, match="only a pending key can be activated"):
        signing_key_activate(active.kid, force=True, reason="test: forced")
    with pytest.raises(SigningKeyRefused, match="No signing key with kid"):
        signing_key_activate("nope")


def test_purge_refusals_and_overlap():
    active = signing_key_ensure_active(at=T0)
    with pytest.raises(SigningKeyRefused, match="is the active key and cannot be purged"):
        signing_key_purge(active.kid, force=True, reason="test: forced")
    pending = signing_key_create(at=T0)
    with pytest.raises(SigningKeyRefused, match="pending; retire it first"):
        signing_key_purge(pending.kid)
    signing_key_activate(pending.kid, at=T0 + dt.timedelta(days=2))
    retired_at = T0 + dt.timedelta(days=2)
    overlap = dt.timedelta(days=3, hours=24, minutes=5)
    with pytest.raises(SigningKeyRefused, match="tokens it signed may be verified until .*Use force"):
        signing_key_purge(active.kid, at=retired_at + overlap - dt.timedelta(seconds=1))
    signing_key_purge(active.kid, at=retired_at + overlap)
    assert not SigningKey.objects.filter(kid=active.kid).exists()


def test_retire_refuses_the_active_key():
    active = signing_key_ensure_active(at=T0)
    with pytest.raises(SigningKeyRefused, match="activate another key to retire it"):
        signing_key_retire(active.kid)
    pending = signing_key_create(at=T0)
    assert signing_key_retire(pending.kid, at=T0).state == State.RETIRED


def test_revoke_of_the_active_key_puts_a_successor_in_place():
    active = signing_key_ensure_active(at=T0)
    with time_machine.travel(T0):
        signing_key_revoke(active.kid, at=T0, reason="test: revoke")
    active.refresh_from_db()
    assert active.state == State.REVOKED
    successor = SigningKey.objects.get(state=State.ACTIVE)
    assert successor.kid != active.kid
    with pytest.raises(SigningKeyRefused, match="already revoked"):
        signing_key_revoke(active.kid, reason="test: revoke")


def test_exactly_one_active_key_is_a_database_constraint():
    signing_key_ensure_active(at=T0)
    other = signing_key_create(at=T0)
    with pytest.raises(IntegrityError), transaction.atomic():
        SigningKey.objects.filter(kid=other.kid).update(state=State.ACTIVE)


def test_policy_timeline_create_activate_purge():
    settings_days = dict(period=90, lead=2)
    first = signing_key_policy_run(at=T0)
    assert first.actions[0].startswith("bootstrapped")
    assert signing_key_policy_run(at=T0 + dt.timedelta(days=80)).actions == []
    created = signing_key_policy_run(at=T0 + dt.timedelta(days=settings_days["period"] - settings_days["lead"]))
    assert created.actions[0].startswith("created")
    assert signing_key_policy_run(at=T0 + dt.timedelta(days=89)).actions == []  # idempotent
    activated = signing_key_policy_run(at=T0 + dt.timedelta(days=90))
    assert activated.actions[0].startswith("activated")
    assert signing_key_policy_run(at=T0 + dt.timedelta(days=94)).actions == []
    purged = signing_key_policy_run(at=T0 + dt.timedelta(days=94, hours=1))
    assert purged.actions[0].startswith("purged")
    assert SigningKey.objects.count() == 1


@pytest.mark.usefixtures("local_signing_keys")
def test_rewrap_round_trips_with_a_new_primary_key(settings):
    key = signing_key_ensure_active(at=T0)
    old_kek = settings.KEY_ENCRYPTION_KEYS[0]
    new_kek = Fernet.generate_key().decode()
    settings.KEY_ENCRYPTION_KEYS = [new_kek, old_kek]
    assert signing_keys_rewrap().keys == 1
    settings.KEY_ENCRYPTION_KEYS = [new_kek]
    key.refresh_from_db()
    assert encryption.decrypt(key.private_key_encrypted).startswith(b"-----BEGIN PRIVATE KEY-----")


@pytest.mark.usefixtures("local_signing_keys")
def test_wrong_key_encryption_key_is_a_clear_startup_error(settings):
    signing_key_ensure_active(at=T0)
    settings.KEY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    errors = [m for m in run_checks(databases=["default"]) if m.id == "issuer.E001"]
    assert errors and "cannot be decrypted: No configured key-encryption key decrypts this data." in errors[0].msg


@pytest.mark.usefixtures("local_signing_keys")
def test_missing_key_encryption_key_is_a_clear_error(settings):
    settings.KEY_ENCRYPTION_KEYS = []
    with pytest.raises(encryption.KeyEncryptionError, match="KEY_ENCRYPTION_KEYS is not set"):
        signing_key_create()


def test_zero_active_keys_is_a_startup_error():
    assert "issuer.E003" in {m.id for m in run_checks(databases=["default"])}
    signing_key_ensure_active()
    assert "issuer.E003" not in {m.id for m in run_checks(databases=["default"])}


@pytest.mark.usefixtures("local_signing_keys")
def test_private_key_bytes_never_reach_the_log(caplog):
    caplog.set_level(logging.DEBUG)
    key = signing_key_ensure_active()
    signing_key_revoke(key.kid, reason="test: revoke")
    pem = encryption.decrypt(SigningKey.objects.get(state=State.ACTIVE).private_key_encrypted).decode()
    body = pem.splitlines()[1]
    assert body not in caplog.text and "PRIVATE KEY" not in caplog.text


def _command(*args):
    out = io.StringIO()
    call_command("signing_keys", *args, stdout=out)
    return out.getvalue()


@pytest.mark.usefixtures("local_signing_keys")
def test_command_lifecycle_with_json():
    assert json.loads(_command("list", "--json")) == []
    first = json.loads(_command("ensure", "--json"))
    created = json.loads(_command("create", "--json"))
    assert created["state"] == "pending" and set(created) >= {
        "kid",
        "state",
        "created_at",
        "activated_at",
        "retired_at",
    }
    with pytest.raises(CommandError, match='To activate now anyway: --force --reason "why"'):
        _command("activate", "--kid", created["kid"])
    with pytest.raises(CommandError, match="needs a reason"):
        _command("activate", "--kid", created["kid"], "--force")
    activated = json.loads(
        _command("activate", "--kid", created["kid"], "--force", "--reason", "test: forced", "--json")
    )
    assert activated["state"] == "active"
    listed = json.loads(_command("list", "--json"))
    assert [k["kid"] for k in listed] == [first["kid"], created["kid"]]
    with pytest.raises(CommandError, match="needs --kid"):
        _command("purge")
    assert json.loads(_command("rewrap", "--json")) == {"keys_rewrapped": 2, "tokens_rewrapped": 0}


def test_command_list_shows_the_due_times_of_the_keys_page():
    active = signing_key_ensure_active(at=T0)
    pending = signing_key_create(at=T0 + dt.timedelta(days=1))
    timeline = {entry.key.kid: entry for entry in signing_key_timeline()}
    listed = {row["kid"]: row for row in json.loads(_command("list", "--json"))}
    assert listed[pending.kid]["activation_due"] == timeline[pending.kid].activation_due.isoformat()
    assert listed[active.kid]["activation_due"] is None and listed[active.kid]["purge_due"] is None
    assert f"activation_due={timeline[pending.kid].activation_due.isoformat()}" in _command("list")


@pytest.mark.usefixtures("local_signing_keys")
def test_command_rewrap_says_how_many_keys_and_tokens(settings):
    from subscriptions.services import instance_activate
    from tests.factories import AddOnPurchaseFactory
    from tests.helpers import mint_token

    signing_key_ensure_active()
    subscription = AddOnPurchaseFactory().subscription
    instance = instance_activate(activation_code=subscription.activation_code, instance_identifier=str(uuid.uuid4()))
    mint_token(instance.instance)
    settings.KEY_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.KEY_ENCRYPTION_KEYS]
    assert _command("rewrap").strip() == "keys_rewrapped=1  tokens_rewrapped=1"


def test_token_refresh_and_policy_commands_run_the_jobs_and_say_what_they_did():
    from subscriptions.services import instance_activate
    from tests.factories import AddOnPurchaseFactory

    out = io.StringIO()
    call_command("signing_key_policy", stdout=out)
    active = SigningKey.objects.get(state=State.ACTIVE)
    assert f"Signing-key policy: bootstrapped {active.kid}" in out.getvalue()
    again = io.StringIO()
    call_command("signing_key_policy", stdout=again)
    assert "nothing was due" in again.getvalue()
    for _ in range(2):
        subscription = AddOnPurchaseFactory().subscription
        instance_activate(activation_code=subscription.activation_code, instance_identifier=str(uuid.uuid4()))
    out = io.StringIO()
    call_command("token_refresh", stdout=out)
    assert out.getvalue().startswith("Token refresh: 2 tokens minted in 1 chunk of instances")
    assert IssuedToken.objects.count() == 2
    out = io.StringIO()
    call_command("token_refresh", stdout=out)
    assert out.getvalue().startswith("Token refresh: 0 tokens minted"), "fresh tokens are not minted again"


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_policy_runs_and_activations_leave_exactly_one_active_key():
    outcomes = run_at_once(*[lambda: signing_key_policy_run(at=T0)] * 3)
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert SigningKey.objects.filter(state=State.ACTIVE).count() == 1
    assert SigningKey.objects.count() == 1

    a, b = signing_key_create(at=T0), signing_key_create(at=T0)
    run_at_once(
        lambda: signing_key_activate(a.kid, force=True, at=T0, reason="race"),
        lambda: signing_key_activate(b.kid, force=True, at=T0, reason="race"),
    )
    assert SigningKey.objects.filter(state=State.ACTIVE).count() == 1

    run_at_once(*[lambda: signing_key_policy_run(at=T0 + dt.timedelta(days=89))] * 3)
    assert SigningKey.objects.filter(state=State.PENDING).count() == 1
    assert SigningKey.objects.filter(state=State.ACTIVE).count() == 1


@pytest.mark.usefixtures("local_signing_keys")
def test_kids_never_start_with_a_dash(monkeypatch):
    """A kid like "-abc" would be read as an option by `signing_keys activate --kid -abc`."""
    real = crypto.public_jwk
    calls = []

    def first_one_dashed(private_key):
        jwk = real(private_key)
        calls.append(jwk["kid"])
        return {**jwk, "kid": "-" + jwk["kid"][1:]} if len(calls) == 1 else jwk

    monkeypatch.setattr(crypto, "public_jwk", first_one_dashed)
    key = signing_key_create()
    assert not key.kid.startswith("-")
    assert len(calls) >= 2


@pytest.fixture
def staff_api():
    from django.contrib.auth.models import User
    from rest_framework.test import APIClient

    client = APIClient()
    from tests.helpers import role

    operator = User.objects.create_user("keys", password="pw-keys-123", is_staff=True)
    operator.groups.add(role("key operator"))
    client.force_authenticate(operator)
    return client


def test_admin_api_key_lifecycle(staff_api):
    assert staff_api.get("/api/v1/admin/signing_keys/").json()["results"] == []
    signing_key_ensure_active()
    created = staff_api.post("/api/v1/admin/signing_keys/", {}, format="json")
    assert created.status_code == 201
    kid = created.json()["kid"]
    assert created.json()["state"] == "pending"
    assert set(created.json()["public_jwk"]) == {"kty", "n", "e", "kid", "use", "alg"}
    refused = staff_api.post(f"/api/v1/admin/signing_keys/{kid}/activate/", {}, format="json")
    assert refused.status_code == 409 and "Use force" in refused.json()["detail"]
    unexplained = staff_api.post(f"/api/v1/admin/signing_keys/{kid}/activate/", {"force": True}, format="json")
    assert unexplained.status_code == 409 and "needs a reason" in unexplained.json()["detail"]
    activated = staff_api.post(
        f"/api/v1/admin/signing_keys/{kid}/activate/", {"force": True, "reason": "test: forced"}, format="json"
    )
    assert activated.status_code == 200 and activated.json()["state"] == "active"
    assert (
        staff_api.post(
            f"/api/v1/admin/signing_keys/{kid}/purge/", {"force": True, "reason": "test: forced"}, format="json"
        ).status_code
        == 409
    )
    body = staff_api.get(f"/api/v1/admin/signing_keys/{kid}/").content.decode()
    assert "PRIVATE" not in body and '"d"' not in body


def test_admin_api_keys_are_staff_only(client):
    from django.contrib.auth.models import User
    from rest_framework.test import APIClient

    assert client.get("/api/v1/admin/signing_keys/").status_code in (401, 403)
    plain = APIClient()
    plain.force_authenticate(User.objects.create_user("plainkeys", password="pw-plain-123"))
    assert plain.post("/api/v1/admin/signing_keys/", {}, format="json").status_code == 403
    assert SigningKey.objects.count() == 0


@pytest.mark.parametrize(
    ("knobs", "expected"),
    [
        ({"PUBLISH_LEAD_SECONDS": 3600}, "issuer.E004"),
        ({"PUBLISH_LEAD_SECONDS": 90 * 86400}, "issuer.E005"),
        ({"REFRESH_THRESHOLD_SECONDS": 86400}, "issuer.W001"),
        ({"REFRESH_THRESHOLD_SECONDS": 10**9}, "issuer.W002"),
    ],
)
def test_unsafe_knobs_are_reported_at_startup(settings, knobs, expected):
    from issuer.checks import issuer_knobs_are_safe

    assert issuer_knobs_are_safe() == []
    settings.ISSUER = knobs
    assert expected in {message.id for message in issuer_knobs_are_safe()}


def test_unknown_knob_is_a_startup_error(settings):
    from issuer.checks import issuer_knobs_are_safe

    settings.ISSUER = {"TOKEN_TTL": 60}
    [error] = issuer_knobs_are_safe()
    assert error.id == "issuer.E006" and "Unknown ISSUER settings: TOKEN_TTL" in error.msg
