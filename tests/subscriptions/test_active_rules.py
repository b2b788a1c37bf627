"""The two forms of "active on a day" agree: `is_active_on` judges rows in memory (every sync judges the purchases its
cached state holds), `active_on` filters in the database (the refresh job, the back office). Both on every boundary
date: the day before the start, the start, the last day, the expiry day (the first without access) and the day
after."""

import datetime as dt

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from subscriptions.models import AddOnPurchase, Subscription
from tests.factories import AddOnPurchaseFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

BASE = dt.date(2030, 1, 1)
PROPERTY = hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def boundary_days(start: dt.date, end: dt.date) -> list[dt.date]:
    one = dt.timedelta(days=1)
    return [start - one, start, start + one, end - one, end, end + one]


@PROPERTY
@given(
    start=st.integers(min_value=-400, max_value=400),
    length=st.integers(min_value=1, max_value=400),
    suspended=st.booleans(),
)
def test_a_subscription_is_active_in_memory_exactly_when_the_queryset_says_so(start, length, suspended):
    starts_on = BASE + dt.timedelta(days=start)
    subscription = SubscriptionFactory(
        starts_on=starts_on, expires_on=starts_on + dt.timedelta(days=length), suspended=suspended
    )
    for day in boundary_days(subscription.starts_on, subscription.expires_on):
        in_database = Subscription.objects.filter(pk=subscription.pk).active_on(day).exists()
        assert subscription.is_active_on(day) == in_database, day
        assert in_database == (not suspended and subscription.starts_on <= day < subscription.expires_on), day


@PROPERTY
@given(
    start=st.integers(min_value=-400, max_value=400),
    length=st.integers(min_value=1, max_value=400),
    cancelled=st.booleans(),
    suspended=st.booleans(),
)
def test_a_purchase_is_active_in_memory_exactly_when_the_queryset_says_so(start, length, cancelled, suspended):
    started_on = BASE + dt.timedelta(days=start)
    purchase = AddOnPurchaseFactory(
        started_on=started_on,
        expires_on=started_on + dt.timedelta(days=length),
        subscription=SubscriptionFactory(starts_on=started_on, expires_on=started_on + dt.timedelta(days=length)),
    )
    AddOnPurchase.objects.filter(pk=purchase.pk).update(
        cancelled_at=timezone.now() if cancelled else None, suspended=suspended
    )
    purchase.refresh_from_db()
    prefetched = Subscription.objects.prefetch_related("add_on_purchases").get(pk=purchase.subscription_id)
    (in_memory,) = prefetched.add_on_purchases.all()  # as a cached sync state holds it
    for day in boundary_days(purchase.started_on, purchase.expires_on):
        in_database = AddOnPurchase.objects.filter(pk=purchase.pk).active_on(day).exists()
        assert in_memory.is_active_on(day) == in_database, day
        assert in_database == (not cancelled and not suspended and purchase.started_on <= day < purchase.expires_on), (
            day
        )
