"""The ledger (issue 24): pools per subscription and UTC month, drawn in the documented order from the month's
totals, so the attribution does not depend on the order events arrived in; amounts are Decimal credits."""

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.models import AuditEvent
from credits.collector import billable_event
from credits.models import CreditGrant, UsageEvent
from credits.selectors import month_of, month_statement
from credits.services import (
    IngestReport,
    credit_grant_create,
    credit_included_grant_fix,
    credit_overage_set,
    usage_events_record,
)
from subscriptions.services import instance_activate, subscription_update
from tests.credits.helpers import tracker_event, usage
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def premium_instance():
    subscription = SubscriptionFactory(license_type="premium", seats=10)
    return instance_activate(
        activation_code=subscription.activation_code, instance_identifier=str(uuid.uuid4())
    ).instance


def record(instance, count=1, **fields):
    now = timezone.now()
    events = [billable_event(tracker_event(usage(instance, **fields)), now) for _ in range(count)]
    return usage_events_record(events, at=now, report=IngestReport())


def test_a_premium_subscription_with_ten_seats_gets_ten_seats_of_included_credits(premium_instance):
    statement = month_statement(premium_instance.subscription, month_of(timezone.now()))
    [included] = statement.pools
    assert (included.kind, included.granted, statement.included_seats) == ("included", D("120"), 10)
    assert statement.remaining == D("120") and statement.usage == 0


def test_priced_events_draw_the_pools_in_order(premium_instance):
    subscription = premium_instance.subscription
    month = month_of(timezone.now())
    credit_grant_create(subscription=subscription, kind="waiver", amount=D("5"), month=month, reason="goodwill")
    credit_grant_create(subscription=subscription, kind="commitment", amount=D("10"), month=month, reason="bought")
    credit_grant_create(
        subscription=subscription,
        kind="one_time",
        amount=D("3"),
        starts_on=month,
        expires_on=month + dt.timedelta(days=90),
        reason="bought once",
    )
    # 120 included + 5 waiver + 10 commitment + 3 one-time = 138; 140 credits of usage leaves 2 of overage
    record(premium_instance, count=7000)  # 7,000 completions × 0.02 = 140 credits
    statement = month_statement(subscription, month)
    assert [(pool.kind, pool.granted, pool.used) for pool in statement.pools] == [
        ("included", D("120"), D("120")),
        ("waiver", D("5"), D("5")),
        ("commitment", D("10"), D("10")),
        ("one_time", D("3"), D("3")),
    ]
    assert statement.usage == D("140") and statement.overage_used == D("2") and statement.exhausted
    assert not statement.overage_allowed
    credit_overage_set(subscription, True, reason="the customer accepted the usage billing terms")
    assert month_statement(subscription, month).overage_allowed


def test_one_time_credits_carry_over_and_expire(premium_instance):
    subscription = premium_instance.subscription
    this = month_of(timezone.now())
    last = month_of(this - dt.timedelta(days=1))
    credit_grant_create(
        subscription=subscription,
        kind="one_time",
        amount=D("50"),
        starts_on=last,
        expires_on=this + dt.timedelta(days=5),
        reason="bought once",
    )
    # last month: 130 credits of usage = 120 included + 10 of the one-time credits
    then = dt.datetime.combine(last, dt.time(12), tzinfo=dt.UTC)  # received then, within the late window
    old = [billable_event(tracker_event(usage(premium_instance, quantity=6500, at=then)), then)]
    report = usage_events_record(old, at=then, report=IngestReport())
    assert report.stored == 1 and UsageEvent.objects.get().month == last
    statement = month_statement(subscription, this)
    one_time = [pool for pool in statement.pools if pool.kind == "one_time"]
    assert [(pool.granted, pool.used) for pool in one_time] == [(D("40"), D("0"))]  # 50 less last month's 10
    next_month = month_of(this + dt.timedelta(days=32))
    assert not [pool for pool in month_statement(subscription, next_month).pools if pool.kind == "one_time"]


def test_the_seats_that_fund_a_month_are_those_at_its_start(premium_instance):
    subscription = premium_instance.subscription
    subscription = subscription_update(subscription, seats=25)  # during the month: next month's credits grow
    month = month_of(timezone.now())
    assert month_statement(subscription, month).pools[0].granted == D("120")
    assert month_statement(subscription, month_of(month + dt.timedelta(days=32))).pools[0].granted == D("300")
    fixed = credit_included_grant_fix(subscription, month)
    assert (fixed.amount, fixed.seats) == (D("120"), 10)
    assert credit_included_grant_fix(subscription, month) == fixed  # once
    assert AuditEvent.objects.filter(action="creditgrant.included").count() == 1


def test_grants_need_a_visible_reason_and_a_known_kind(premium_instance):
    subscription, month = premium_instance.subscription, month_of(timezone.now())
    with pytest.raises(ValidationError, match="reason"):
        credit_grant_create(subscription=subscription, kind="waiver", amount=D("1"), month=month, reason="\u200b")
    with pytest.raises(ValidationError, match="Unknown kind"):
        credit_grant_create(subscription=subscription, kind="included", amount=D("1"), month=month, reason="x")
    with pytest.raises(ValidationError):
        credit_grant_create(subscription=subscription, kind="waiver", amount=D("-1"), month=month, reason="x")
    with pytest.raises(ValidationError):
        credit_grant_create(
            subscription=subscription, kind="one_time", amount=D("1"), starts_on=month, expires_on=month, reason="x"
        )
    assert not CreditGrant.objects.exists()
    grant = credit_grant_create(subscription=subscription, kind="adjustment", amount=D("-4"), month=month, reason="fix")
    event = AuditEvent.objects.get(action="creditgrant.adjustment")
    assert event.reason == "fix" and event.object_id == str(grant.pk)
    assert month_statement(subscription, month).usage == D("4")  # a negative adjustment is charged like usage


def test_unpriced_events_are_stored_and_flagged_never_free(premium_instance):
    report = record(premium_instance, event_type="some_future_feature")
    assert (report.stored, report.unpriced) == (1, 1)
    statement = month_statement(premium_instance.subscription, month_of(timezone.now()))
    assert (statement.unpriced_events, statement.events, statement.usage) == (1, 1, 0)
    assert UsageEvent.objects.get().credits is None


def test_the_daily_rollup_always_agrees_with_the_entries(premium_instance):
    from credits.selectors import daily_usage_mismatches

    other = premium_instance.__class__.objects.exclude(pk=premium_instance.pk).first()
    assert other is None
    record(premium_instance, count=30, user="alice")
    record(premium_instance, count=20, user="bob", event_type="unpriced_thing")
    now = timezone.now()
    replay = [billable_event(tracker_event(usage(premium_instance, user="alice")), now) for _ in range(5)]
    usage_events_record(replay + replay, at=now, report=IngestReport())  # duplicates roll up nothing
    assert daily_usage_mismatches(month_of(now)) == []
    from credits.models import DailyUsage

    rows = {row.user_key: (row.credits, row.events, row.unpriced) for row in DailyUsage.objects.all()}
    assert rows == {"alice": (D("0.7"), 35, 0), "bob": (D("0"), 20, 20)}
