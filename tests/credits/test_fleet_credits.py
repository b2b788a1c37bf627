"""The fleet's view of the credits (issue 25): subscriptions counted per band of the month's credits used by the
rollup, exported as a handful of gauges, and the most used listed on the dashboard."""

import uuid
from decimal import Decimal

import pytest
from django.utils import timezone

from credits.collector import billable_event
from credits.selectors import credit_usage_bands, month_of
from credits.services import IngestReport, credit_grant_create, usage_events_record
from issuer.fleet.services import fleet_rollup_run
from subscriptions.services import instance_activate
from tests.credits.helpers import tracker_event, usage
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


def premium_instance(seats=1):
    subscription = SubscriptionFactory(license_type="premium", seats=seats)
    return instance_activate(
        activation_code=subscription.activation_code, instance_identifier=str(uuid.uuid4())
    ).instance


def spend(instance, count):
    now = timezone.now()
    events = [billable_event(tracker_event(usage(instance)), now) for _ in range(count)]
    usage_events_record(events, at=now, report=IngestReport())


def test_subscriptions_are_counted_per_band_and_the_most_used_listed(client, admin_user):
    half, most, all_of_it, none = premium_instance(), premium_instance(), premium_instance(), premium_instance()
    spend(half, 330)  # 6.6 of 12 credits: 55%
    spend(most, 500)  # 10 of 12: 83%
    spend(all_of_it, 600)  # 12 of 12
    month = month_of(timezone.now())
    credit_grant_create(subscription=half.subscription, kind="waiver", amount=Decimal("12"), month=month, reason="x")
    bands, nearly_out = credit_usage_bands(month, active_subscriptions=4)
    assert bands == {"below_50": 2, "50_to_80": 0, "80_to_100": 1, "exhausted": 1}  # the waiver halves 55%
    assert [pk for pk, _ in nearly_out] == [all_of_it.subscription_id, most.subscription_id]
    assert none.subscription_id not in dict(nearly_out)

    fleet_rollup_run()
    client.force_login(admin_user)
    metrics = client.get("/metrics").content.decode()
    assert 'issuer_credits_subscriptions{band="exhausted"} 1.0' in metrics
    assert 'issuer_credits_subscriptions{band="80_to_100"} 1.0' in metrics
    page = client.get("/admin/").content.decode()
    section = page[page.index('id="credits-nearly-out-section"') :]
    assert "100%" in section and "83%" in section
