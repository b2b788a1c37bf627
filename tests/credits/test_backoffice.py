"""The credits in the back office and the admin API (issue 24, first cut): the month's pools on the subscription
page, grants and the overage switch through forms with a required reason, each audited; the API the same."""

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from audit.models import AuditEvent
from credits.collector import billable_event
from credits.models import CreditAccount, CreditGrant
from credits.selectors import month_of
from credits.services import IngestReport, usage_events_record
from subscriptions.services import instance_activate
from tests.credits.helpers import tracker_event, usage
from tests.factories import SubscriptionFactory
from tests.helpers import role

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscription():
    subscription = SubscriptionFactory(license_type="ultimate", seats=5)
    instance = instance_activate(
        activation_code=subscription.activation_code, instance_identifier=str(uuid.uuid4())
    ).instance
    now = timezone.now()
    usage_events_record([billable_event(tracker_event(usage(instance)), now)], at=now, report=IngestReport())
    return subscription


def logged_in(name: str) -> Client:
    user = User.objects.create_user(name.replace(" ", "-"), password="pw-12345-credits", is_staff=True)
    user.groups.add(role(name))
    client = Client()
    client.force_login(user)
    return client


def test_the_subscription_page_shows_the_months_pools_to_readers(subscription):
    page = logged_in("viewer").get(f"/admin/subscriptions/subscription/{subscription.pk}/change/").content.decode()
    assert 'id="credits-section"' in page and 'data-pool="included"' in page
    assert "0.02 of 120 credits used" in page  # 5 seats × 24, one completion at 0.02
    assert "Grant credits" not in page  # a viewer reads; billing grants
    assert 'data-top-user="u-1"' in page and 'data-top-feature="code_suggestions"' in page
    assert "<polyline" in page and "119.98 credits left" in page  # the burn-down, and its text


def test_billing_grants_credits_with_a_reason_and_the_grant_is_audited(subscription):
    client = logged_in("billing")
    page = client.get(f"/admin/subscriptions/subscription/{subscription.pk}/change/").content.decode()
    assert "Grant credits" in page
    form = {"subscription": subscription.pk, "kind": "waiver", "amount": "10", "month": timezone.now().date()}
    refused = client.post("/admin/credits/creditgrant/add/", {**form, "reason": "\u200b "})
    assert refused.status_code == 200 and "visible characters" in refused.content.decode()
    assert not CreditGrant.objects.exists()
    assert client.post("/admin/credits/creditgrant/add/", {**form, "reason": "goodwill"}).status_code == 302
    grant = CreditGrant.objects.get()
    assert (grant.kind, grant.amount, grant.month) == ("waiver", Decimal("10"), month_of(timezone.now()))
    assert AuditEvent.objects.get(action="creditgrant.waiver").reason == "goodwill"
    page = client.get(f"/admin/subscriptions/subscription/{subscription.pk}/change/").content.decode()
    assert 'data-pool="waiver"' in page and "of 130 credits used" in page


def test_overage_is_switched_with_a_reason(subscription):
    client = logged_in("billing")
    add = f"/admin/credits/creditaccount/add/?subscription={subscription.pk}"
    assert client.get(add).status_code == 200
    answer = client.post(add, {"subscription": subscription.pk, "overage_allowed": "on", "reason": "terms accepted"})
    assert answer.status_code == 302 and CreditAccount.objects.get().overage_allowed
    assert client.get(add).status_code == 302  # one account a subscription: the link goes to it
    assert AuditEvent.objects.get(action="creditaccount.overage").reason == "terms accepted"


def api_as(name: str) -> APIClient:
    user = User.objects.create_user(f"api-{name}".replace(" ", "-"), password="pw-12345-credits", is_staff=True)
    user.groups.add(role(name))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user)[1]}")
    return api


def test_the_admin_api_reads_statements_and_grants(subscription):
    viewer, billing = api_as("viewer"), api_as("billing")
    statement = viewer.get(f"/api/v1/admin/credits/subscriptions/{subscription.pk}/statement/").json()
    assert statement["granted"] == "120" and statement["used"] == "0.02" and statement["events"] == 1
    assert viewer.get(f"/api/v1/admin/credits/subscriptions/{subscription.pk}/statement/?month=May").status_code == 400
    grant = {
        "subscription": subscription.pk,
        "kind": "one_time",
        "amount": "50",
        "starts_on": timezone.now().date().isoformat(),
        "expires_on": (timezone.now().date() + dt.timedelta(days=60)).isoformat(),
        "reason": "bought once",
    }
    assert viewer.post("/api/v1/admin/credits/grants/", grant, format="json").status_code == 403
    assert billing.post("/api/v1/admin/credits/grants/", {**grant, "reason": " "}, format="json").status_code == 400
    assert (
        billing.post("/api/v1/admin/credits/grants/", {**grant, "kind": "included"}, format="json").status_code == 400
    )
    created = billing.post("/api/v1/admin/credits/grants/", grant, format="json")
    assert created.status_code == 201, created.content
    after = viewer.get(f"/api/v1/admin/credits/subscriptions/{subscription.pk}/statement/").json()
    assert after["granted"] == "170"
    overage = billing.post(
        f"/api/v1/admin/credits/subscriptions/{subscription.pk}/overage/",
        {"allowed": True, "reason": "terms accepted"},
        format="json",
    )
    assert overage.status_code == 200 and overage.json()["allowed"] is True


def test_the_months_events_export_as_csv_with_formulas_neutralised(subscription):
    from credits.models import UsageEvent

    UsageEvent.objects.update(feature='=HYPERLINK("http://evil.test")')
    client = logged_in("viewer")
    month = month_of(timezone.now()).strftime("%Y-%m")
    answer = client.get(f"/admin/credits/usageevent/export/?subscription={subscription.pk}&month={month}")
    assert answer.status_code == 200 and answer["Content-Type"] == "text/csv"
    lines = b"".join(answer.streaming_content).decode().splitlines()
    assert lines[0].startswith("occurred_at,event_id,event_type") and len(lines) == 2
    assert "'=HYPERLINK" in lines[1]
    assert Client().get(f"/admin/credits/usageevent/export/?subscription={subscription.pk}").status_code == 302


def test_the_admin_api_sets_caps_with_a_reason(subscription):
    from credits.models import CreditAccount, UserCapOverride

    viewer, billing = api_as("viewer"), api_as("billing")
    caps = f"/api/v1/admin/credits/subscriptions/{subscription.pk}/caps/"
    assert viewer.post(caps, {"user_cap": "10", "reason": "pilot"}, format="json").status_code == 403
    assert billing.post(caps, {"user_cap": "10", "reason": "\u200b"}, format="json").status_code == 400
    assert billing.post(caps, {"user_cap": "-1", "reason": "pilot"}, format="json").status_code == 400
    answer = billing.post(caps, {"user_cap": "10", "reason": "pilot"}, format="json")
    assert answer.status_code == 200 and answer.json()["user_cap"] == "10"
    assert CreditAccount.objects.get().user_cap == Decimal("10")
    users = caps + "users/"
    assert billing.post(users, {"user_key": "7", "cap": "25", "reason": "lead"}, format="json").json()["cap"] == "25"
    assert UserCapOverride.objects.get().cap == Decimal("25")
    assert billing.post(users, {"user_key": "7", "cap": None, "reason": "done"}, format="json").json()["cap"] is None
    assert not UserCapOverride.objects.exists()
    assert (
        billing.post(
            caps.replace(str(subscription.pk), "999999"), {"user_cap": "1", "reason": "x"}, format="json"
        ).status_code
        == 404
    )
