"""The quota check (issue 25): HEAD /api/v1/consumers/resolve turns from 200 to 402 when the month's credits are
used up (and back at the month's turn), a user over their cap gets 402 while others get 200, an unentitled feature
gets 403; both caller styles, each with its own limit."""

import datetime as dt
import uuid
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import User
from django.test import override_settings
from django.utils import timezone
from knox.models import AuthToken

from audit.models import AuditEvent
from credits.collector import billable_event
from credits.services import (
    IngestReport,
    credit_overage_set,
    credit_user_cap_override_set,
    credit_user_cap_set,
    usage_events_record,
)
from subscriptions.services import instance_activate
from tests.credits.helpers import tracker_event, usage
from tests.factories import AddOnPurchaseFactory, SubscriptionFactory
from tests.helpers import role

pytestmark = pytest.mark.django_db
RESOLVE = "/api/v1/consumers/resolve"


@pytest.fixture
def instance():
    """Premium with 1 seat (12 included credits) and Duo Pro (Code Suggestions)."""
    subscription = SubscriptionFactory(license_type="premium", seats=1)
    AddOnPurchaseFactory(subscription=subscription, add_on="duo_pro", quantity=1)
    return instance_activate(
        activation_code=subscription.activation_code, instance_identifier=str(uuid.uuid4()), gitlab_version="18.11.0"
    ).instance


@pytest.fixture
def gateway():
    """The AI gateway's headers: an account with the "quota service" role and an admin API token."""
    user = User.objects.create_user("aigw", email="aigw@example.test", password="pw-aigw-12345")
    user.groups.add(role("quota service"))
    return {"HTTP_X_ADMIN_EMAIL": "aigw@example.test", "HTTP_X_ADMIN_TOKEN": AuthToken.objects.create(user)[1]}


def spend(instance, count: int, user="u-1", at=None):
    now = at or timezone.now()
    events = [billable_event(tracker_event(usage(instance, user=user, at=now)), now) for _ in range(count)]
    usage_events_record(events, at=now, report=IngestReport())


def ask(client, instance, headers, user="u-1", event_type="code_completions"):
    query = {
        "instance_id": str(instance.instance_identifier),
        "user_id": user,
        "global_user_id": f"anon-{user}",
        "event_type": event_type,
        "realm": "self-managed",
        "feature_ai_catalog_item": "",
    }
    return client.head(RESOLVE, query, **headers)


def test_allowed_then_out_of_credits_then_back_at_the_months_turn(client, instance, gateway):
    first = ask(client, instance, gateway)
    assert (
        first.status_code == 200
        and first["Cache-Control"].endswith("max-age=3600")
        or "max-age=" in first["Cache-Control"]
    )
    spend(instance, 400)  # 8 of 12 credits: two thirds used
    answer = ask(client, instance, gateway)
    assert answer.status_code == 200 and int(answer["Cache-Control"].rsplit("=", 1)[1]) <= 300
    spend(instance, 200)  # 12 of 12
    exhausted = ask(client, instance, gateway)
    assert exhausted.status_code == 402 and int(exhausted["Cache-Control"].rsplit("=", 1)[1]) <= 30
    credit_overage_set(instance.subscription, True, reason="terms accepted")
    assert ask(client, instance, gateway).status_code == 200  # the ledger moved: no stale cached balance
    credit_overage_set(instance.subscription, False, reason="terms withdrawn")
    assert ask(client, instance, gateway).status_code == 402
    now = timezone.now()
    next_month = (now.replace(day=1) + dt.timedelta(days=32)).replace(day=1, hour=0, minute=5)
    with time_machine.travel(next_month, tick=False):
        assert ask(client, instance, gateway).status_code == 200


def test_a_user_over_their_cap_is_refused_while_others_are_not(client, instance, gateway):
    credit_user_cap_set(instance.subscription, Decimal("1"), reason="one credit a user this month")
    spend(instance, 50, user="alice")  # 1 credit
    assert ask(client, instance, gateway, user="alice").status_code == 402
    assert ask(client, instance, gateway, user="bob").status_code == 200
    credit_user_cap_override_set(instance.subscription, "alice", Decimal("5"), reason="alice leads the pilot")
    assert ask(client, instance, gateway, user="alice").status_code == 200
    credit_user_cap_override_set(instance.subscription, "alice", None, reason="pilot over")
    assert ask(client, instance, gateway, user="alice").status_code == 402
    actions = list(
        AuditEvent.objects.filter(action__startswith="creditaccount.user_cap").values_list("reason", flat=True)
    )
    assert actions == ["one credit a user this month"]
    assert AuditEvent.objects.filter(action__in=["usercapoverride.set", "usercapoverride.delete"]).count() == 2


def test_an_unentitled_feature_or_unknown_instance_gets_403(client, instance, gateway):
    assert ask(client, instance, gateway, event_type="amazon_q_integration").status_code == 403  # no Amazon Q add-on
    assert ask(client, instance, gateway, event_type="no_such_event").status_code == 403
    stranger = instance.__class__(instance_identifier=uuid.uuid4())
    assert ask(client, stranger, gateway).status_code == 403


def test_the_gateway_credential_is_checked(client, instance, gateway):
    assert ask(client, instance, {**gateway, "HTTP_X_ADMIN_TOKEN": "iss_wrong"}).status_code == 401
    assert ask(client, instance, {**gateway, "HTTP_X_ADMIN_EMAIL": "other@example.test"}).status_code == 401
    plain = User.objects.create_user("plain", email="plain@example.test", password="pw-plain-12345")
    headers = {"HTTP_X_ADMIN_EMAIL": "plain@example.test", "HTTP_X_ADMIN_TOKEN": AuthToken.objects.create(plain)[1]}
    assert ask(client, instance, headers).status_code == 401  # a token without the quota service role


def test_gitlab_rails_unauthenticated_ask_is_limited_per_address(client, instance):
    query = {
        "user_id": "7",
        "unique_instance_id": "",
        "instance_id": str(instance.instance_identifier),
        "realm": "self-managed",
        "event_type": "code_completions",
    }
    assert client.head(RESOLVE, query).status_code == 200
    with override_settings(INSTANCE_RATE_PER_ADDRESS="2/m"):
        answers = [client.head(RESOLVE, query, REMOTE_ADDR="198.51.100.7").status_code for _ in range(3)]
    assert answers[-1] == 429


def test_the_gateway_credential_has_its_own_limit_not_the_address_one(client, instance, gateway):
    with override_settings(INSTANCE_RATE_PER_ADDRESS="2/m", QUOTA_RATE_PER_CREDENTIAL="5/m"):
        answers = [ask(client, instance, gateway).status_code for _ in range(6)]
    assert answers[:5] == [200] * 5 and answers[5] == 429
