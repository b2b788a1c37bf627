"""Rotation gated on validators: the policy activates a pending key only when the publish lead has passed and every
validator seen lately has fetched a key set containing it; the dashboard warns when one holds it back a day."""

import datetime as dt
import io

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from issuer.keys.selectors import validator_rows, validators_blocking
from issuer.keys.services import (
    SigningKeyTooEarly,
    signing_key_activate,
    signing_key_create,
    signing_key_ensure_active,
    signing_key_policy_run,
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


def test_activation_waits_for_the_validator_that_has_not_fetched_the_new_key(client):
    active = signing_key_ensure_active(at=T0)
    fetch(client, GATEWAY, T0)
    fetch(client, WORKFLOW, T0)
    due = T0 + dt.timedelta(days=90)
    created = signing_key_policy_run(at=due - dt.timedelta(days=2))  # the successor is published ahead
    pending = SigningKey.objects.get(state="pending")
    assert created.actions == [f"created {pending.kid}"]
    fetch(client, GATEWAY, due - dt.timedelta(days=1))  # the gateway fetches the new set
    fetch(client, WORKFLOW, due - dt.timedelta(days=1), DISCOVERY)  # the workflow is around, on its old set

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
    fetch(client, WORKFLOW, later - dt.timedelta(hours=1), DISCOVERY)
    assert [str(v) for v in validators_blocking(later)] == ["duo-workflow/0.9 from 10.0.0.6"]

    client.force_login(User.objects.create_superuser("root-admin", password="pw-root-123"))
    with time_machine.travel(later, tick=False):
        page = client.get("/admin/").content.decode()
        assert "Key rotation is held back" in page and "duo-workflow/0.9" in page
        metrics = client.get("/metrics").content.decode()
    assert "issuer_validators_blocking_activation 1.0" in metrics

    with pytest.raises(SigningKeyTooEarly, match="duo-workflow/0.9"):
        signing_key_activate(pending.kid, at=later)
    fetch(client, WORKFLOW, later)  # it catches up
    assert signing_key_policy_run(at=later).actions == [f"activated {pending.kid}, retired {active.kid}"]


def test_force_passes_the_gate_with_a_reason_that_is_recorded(client):
    signing_key_ensure_active(at=T0)
    fetch(client, WORKFLOW, T0)
    pending = signing_key_create(at=T0 + dt.timedelta(days=80))
    at = T0 + dt.timedelta(days=90)
    fetch(client, WORKFLOW, at - dt.timedelta(days=1), DISCOVERY)
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
    assert not validator_fetch_record(user_agent="gw", address="10.0.0.5", kids=None, at=at)
    assert validator_fetch_record(user_agent="gw", address="10.0.0.5", kids=["a", "b"], at=at)
    assert Validator.objects.get().kids == ["a", "b"]
    assert validator_fetch_record(user_agent="gw", address="10.0.0.7", kids=None, at=at)  # discovery only
    assert Validator.objects.get(address="10.0.0.7").kids == [] and Validator.objects.count() == 2


def test_validators_not_seen_for_the_forget_window_drop_off(client):
    signing_key_ensure_active(at=T0)
    fetch(client, GATEWAY, T0)
    signing_key_policy_run(at=T0 + dt.timedelta(days=6))
    assert Validator.objects.count() == 1
    signing_key_policy_run(at=T0 + dt.timedelta(days=8))
    assert not Validator.objects.exists()
