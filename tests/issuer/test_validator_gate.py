"""Rotation gated on validators: the policy activates a pending key only when the publish lead has passed and every
confirmed validator seen lately has fetched a key set containing it; the dashboard warns when one holds it back a
day, and when none is confirmed."""

import datetime as dt
import io

import pytest
import time_machine
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from issuer.keys.selectors import validator_rows, validators_blocking
from issuer.keys.services import (
    SigningKeyTooEarly,
    signing_key_activate,
    signing_key_create,
    signing_key_ensure_active,
    signing_key_policy_run,
    validator_confirm,
    validator_fetch_record,
)
from issuer.models import SigningKey, Validator
from tests.conftest import validators_written

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
GATEWAY = {"HTTP_USER_AGENT": "ai-gateway/1.2", "REMOTE_ADDR": "10.0.0.5"}
WORKFLOW = {"HTTP_USER_AGENT": "duo-workflow/0.9", "REMOTE_ADDR": "10.0.0.6"}


def fetch(client, who, at, path="/oauth/discovery/keys"):
    with time_machine.travel(at, tick=False):
        validators_written.clear()  # a new minute in every process
        assert client.get(path, **who).status_code == 200


DISCOVERY = "/.well-known/openid-configuration"


def confirm(*labels):
    for validator in Validator.objects.all():
        if str(validator) in labels:
            validator_confirm(validator, True)


def test_activation_waits_for_the_confirmed_validator_that_has_not_fetched_the_new_key(client, admin_user):
    active = signing_key_ensure_active(at=T0)
    due = T0 + dt.timedelta(days=90)
    fetch(client, GATEWAY, due - dt.timedelta(days=3))
    fetch(client, WORKFLOW, due - dt.timedelta(days=3))
    confirm("ai-gateway/1.2 from 10.0.0.5", "duo-workflow/0.9 from 10.0.0.6")
    created = signing_key_policy_run(at=due - dt.timedelta(days=2))  # the successor is published ahead
    pending = SigningKey.objects.get(state="pending")
    assert created.actions == [f"created {pending.kid}"]
    fetch(client, GATEWAY, due - dt.timedelta(days=1))  # the gateway fetches the new set; the workflow's is older

    report = signing_key_policy_run(at=due)
    assert SigningKey.objects.get(kid=pending.kid).state == "pending"
    assert report.actions[0].startswith(f"waiting to activate {pending.kid}: 1 validator(s)")
    assert "duo-workflow/0.9 from 10.0.0.6" in report.actions[0]
    assert {str(row.validator): row.has_pending for row in validator_rows(due)} == {
        "ai-gateway/1.2 from 10.0.0.5": True,
        "duo-workflow/0.9 from 10.0.0.6": False,
    }
    assert validators_blocking(due + dt.timedelta(hours=23)) == []
    later = due + dt.timedelta(days=1, hours=1)
    assert [str(v) for v in validators_blocking(later)] == ["duo-workflow/0.9 from 10.0.0.6"]

    client.force_login(admin_user)
    with time_machine.travel(later, tick=False):
        page = client.get("/admin/").content.decode()
        assert "Key rotation is held back" in page and "duo-workflow/0.9" in page
        metrics = client.get("/metrics").content.decode()
    assert "issuer_validators_blocking_activation 1.0" in metrics

    with pytest.raises(SigningKeyTooEarly, match="duo-workflow/0.9"):
        signing_key_activate(pending.kid, at=later)
    fetch(client, WORKFLOW, later)  # it catches up
    assert signing_key_policy_run(at=later).actions == [f"activated {pending.kid}, retired {active.kid}"]


def test_an_unconfirmed_validator_is_telemetry_never_a_brake(client):
    """Issue 22, finding 4: anyone can fetch the JWKS; only what an operator confirmed gates a rotation."""
    active = signing_key_ensure_active(at=T0)
    due = T0 + dt.timedelta(days=90)
    fetch(client, {"HTTP_USER_AGENT": "curl/8.0", "REMOTE_ADDR": "203.0.113.9"}, due - dt.timedelta(days=3))
    pending = signing_key_create(at=due - dt.timedelta(days=2))
    assert signing_key_policy_run(at=due).actions == [f"activated {pending.kid}, retired {active.kid}"]
    assert Validator.objects.get().confirmed is False  # still listed on the keys page


def test_discovery_records_no_validator(client):
    signing_key_ensure_active(at=T0)
    for number in range(5):
        fetch(client, {"HTTP_USER_AGENT": f"spray/{number}", "REMOTE_ADDR": "203.0.113.9"}, T0, DISCOVERY)
    assert not Validator.objects.exists()


def test_a_flood_of_user_agents_stays_bounded_and_a_real_gateway_is_still_seen(client, monkeypatch):
    from issuer.keys import services

    monkeypatch.setattr(services, "MAX_VALIDATORS", 20)
    signing_key_ensure_active(at=T0)
    fetch(client, GATEWAY, T0)
    confirm("ai-gateway/1.2 from 10.0.0.5")
    for number in range(30):
        fetch(
            client, {"HTTP_USER_AGENT": f"spray/{number}", "REMOTE_ADDR": "203.0.113.9"}, T0 + dt.timedelta(minutes=1)
        )
    assert Validator.objects.filter(confirmed=False).count() <= 20
    fetch(client, WORKFLOW, T0 + dt.timedelta(minutes=2))  # a new real client after the flood is recorded
    assert Validator.objects.filter(user_agent="duo-workflow/0.9").exists()
    fetch(client, GATEWAY, T0 + dt.timedelta(minutes=3))  # and the confirmed one is never evicted
    assert Validator.objects.get(user_agent="ai-gateway/1.2").last_seen_at == T0 + dt.timedelta(minutes=3)


def test_the_migration_confirms_validators_that_fetched_a_key_set():
    import importlib

    from django.apps import apps

    migration = importlib.import_module("issuer.migrations.0012_validators_confirmed")
    validator_fetch_record(user_agent="gw", address="10.0.0.5", kids=["a"], at=T0)
    Validator.objects.create(fingerprint="x" * 64, first_seen_at=T0, last_seen_at=T0, kids=[])
    migration.confirm_key_set_fetchers(apps, None)
    assert dict(Validator.objects.values_list("user_agent", "confirmed")) == {"gw": True, "": False}


def test_the_dashboard_warns_when_no_validator_is_confirmed(client, admin_user):
    signing_key_ensure_active()
    client.force_login(admin_user)
    assert 'id="no-confirmed-validator"' in client.get("/admin/").content.decode()
    client.get("/oauth/discovery/keys", **GATEWAY)
    confirm("ai-gateway/1.2 from 10.0.0.5")
    assert 'id="no-confirmed-validator"' not in client.get("/admin/").content.decode()


def test_force_passes_the_gate_with_a_reason_that_is_recorded(client):
    signing_key_ensure_active(at=T0)
    at = T0 + dt.timedelta(days=90)
    fetch(client, WORKFLOW, at - dt.timedelta(days=6))
    confirm("duo-workflow/0.9 from 10.0.0.6")
    pending = signing_key_create(at=at - dt.timedelta(days=5))
    with time_machine.travel(at, tick=False):
        with pytest.raises(CommandError, match="have not fetched a key set"):
            call_command("signing_keys", "activate", "--kid", pending.kid, stdout=io.StringIO())
        with pytest.raises(CommandError, match="needs a reason"):
            call_command("signing_keys", "activate", "--kid", pending.kid, "--force", stdout=io.StringIO())
        call_command(
            "signing_keys",
            "activate",
            "--kid",
            pending.kid,
            "--force",
            "--reason",
            "workflow is retired",
            stdout=io.StringIO(),
        )
    assert SigningKey.objects.get(kid=pending.kid).state == "active"
    event = AuditEvent.objects.get(action="signingkey.activate_forced")
    assert event.reason == "workflow is retired"


def test_without_any_validator_the_time_rule_alone_decides():
    active = signing_key_ensure_active(at=T0)
    pending = signing_key_create(at=T0 + dt.timedelta(days=80))
    assert signing_key_policy_run(at=T0 + dt.timedelta(days=90)).actions == [
        f"activated {pending.kid}, retired {active.kid}"
    ]


def test_fetches_are_written_at_most_once_a_minute_unless_the_set_changed():
    at = T0
    assert validator_fetch_record(user_agent="gw", address="10.0.0.5", kids=["a"], at=at)
    assert not validator_fetch_record(user_agent="gw", address="10.0.0.5", kids=["a"], at=at)
    assert validator_fetch_record(user_agent="gw", address="10.0.0.5", kids=["a", "b"], at=at)
    assert Validator.objects.get().kids == ["a", "b"]


def test_validators_not_seen_for_the_forget_window_drop_off(client):
    signing_key_ensure_active(at=T0)
    fetch(client, GATEWAY, T0)
    signing_key_policy_run(at=T0 + dt.timedelta(days=6))
    assert Validator.objects.count() == 1
    signing_key_policy_run(at=T0 + dt.timedelta(days=8))
    assert not Validator.objects.exists()
