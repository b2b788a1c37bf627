import datetime as dt
import uuid

import pytest
import time_machine
from django.core.exceptions import ValidationError

from subscriptions import services
from subscriptions.models import AddOnPurchase, Customer, Subscription
from subscriptions.selectors import instance_entitlements
from tests.factories import AddOnPurchaseFactory, CustomerFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 6, 15)


def _create(**overrides):
    values = dict(
        customer=CustomerFactory(),
        license_type="ultimate",
        seats=10,
        starts_on=TODAY,
        expires_on=TODAY + dt.timedelta(days=365),
        add_ons=[("duo_pro", 5)],
    )
    values.update(overrides)
    return services.subscription_create(**values)


def test_subscription_create_with_add_ons():
    subscription = _create()
    purchase = subscription.add_on_purchases.get()
    assert (purchase.add_on, purchase.quantity, purchase.started_on, purchase.expires_on) == (
        "duo_pro",
        5,
        subscription.starts_on,
        subscription.expires_on,
    )
    assert len(subscription.activation_code) == 24
    assert not set(subscription.activation_code) & set("01OIL")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"starts_on": TODAY, "expires_on": TODAY}, "must start before it expires"),
        ({"expires_on": TODAY - dt.timedelta(days=1)}, "must start before it expires"),
        ({"license_type": "platinum"}, "Unknown license type 'platinum'"),
        ({"seats": 0}, "at least one seat"),
        ({"add_ons": [("duo_platinum", 5)]}, "Unknown add-on 'duo_platinum'"),
        ({"add_ons": [("duo_pro", 0)]}, "quantity of at least 1"),
    ],
)
def test_invalid_subscription_is_refused_and_nothing_is_written(overrides, message):
    customer = CustomerFactory()
    with pytest.raises(ValidationError, match=message):
        _create(customer=customer, **overrides)
    assert Subscription.objects.count() == 0
    assert AddOnPurchase.objects.count() == 0


def test_duplicate_customer_name_is_a_validation_error():
    services.customer_create(name="ACME")
    with pytest.raises(ValidationError, match="already exists"):
        services.customer_create(name="ACME ")
    assert Customer.objects.count() == 1


def test_extend_and_change_seats():
    subscription = _create()
    services.subscription_update(subscription, seats=20, expires_on=TODAY + dt.timedelta(days=730))
    subscription.refresh_from_db()
    assert (subscription.seats, subscription.expires_on) == (20, TODAY + dt.timedelta(days=730))
    with pytest.raises(ValidationError):
        services.subscription_update(subscription, expires_on=TODAY - dt.timedelta(days=1))
    subscription.refresh_from_db()
    assert subscription.expires_on == TODAY + dt.timedelta(days=730)


def test_add_on_purchase_change_and_cancel():
    purchase = AddOnPurchaseFactory(add_on="duo_pro", quantity=5)
    services.add_on_purchase_update(purchase, quantity=8)
    purchase.refresh_from_db()
    assert purchase.quantity == 8
    with pytest.raises(ValidationError):
        services.add_on_purchase_update(purchase, quantity=0)
    cancelled = services.add_on_purchase_cancel(purchase)
    first = cancelled.cancelled_at
    assert first is not None
    assert services.add_on_purchase_cancel(purchase).cancelled_at == first
    assert not cancelled.is_active_on(dt.date.today())


def test_regenerate_activation_code():
    subscription = _create()
    old = subscription.activation_code
    assert services.subscription_regenerate_activation_code(subscription).activation_code != old


@pytest.fixture
def bound_instance(signing_key):
    today = dt.date.today()
    subscription = SubscriptionFactory(
        starts_on=today - dt.timedelta(days=30), expires_on=today + dt.timedelta(days=365)
    )
    return services.instance_activate(
        activation_code=subscription.activation_code, instance_identifier=str(uuid.uuid4()), gitlab_version="17.11.0"
    ).instance


@pytest.mark.parametrize(
    ("started", "expires", "active"),  # days from today
    [
        (-30, -1, False),  # expired yesterday
        (-30, 0, False),  # expires today: today is the first day without
        (-30, 1, True),  # last day
        (0, 30, True),  # starts today
        (1, 30, False),  # starts tomorrow
    ],
)
def test_entitlements_on_boundary_dates(bound_instance, started, expires, active):
    today = dt.date.today()
    AddOnPurchaseFactory(
        subscription=bound_instance.subscription,
        add_on="duo_enterprise",
        quantity=7,
        started_on=today + dt.timedelta(days=started),
        expires_on=today + dt.timedelta(days=expires),
    )
    with time_machine.travel(dt.datetime.combine(today, dt.time(12), tzinfo=dt.UTC)):
        entitlements = instance_entitlements(bound_instance)
    assert (("duo_enterprise", 7) in entitlements.active_add_ons) is active
    assert entitlements.duo_seat_count == (7 if active else 0)
    assert ("troubleshoot_job" in entitlements.grant.scopes) is active


def test_duo_seat_count_is_the_largest_duo_purchase(bound_instance):
    for add_on, quantity in (("duo_pro", 12), ("duo_enterprise", 9), ("product_analytics", 500)):
        AddOnPurchaseFactory(subscription=bound_instance.subscription, add_on=add_on, quantity=quantity)
    assert instance_entitlements(bound_instance).duo_seat_count == 12


def test_subscription_window_controls_access(bound_instance):
    subscription = bound_instance.subscription
    at = dt.datetime.combine(subscription.expires_on, dt.time(0, 0), tzinfo=dt.UTC)
    assert instance_entitlements(bound_instance, at - dt.timedelta(seconds=1)).access
    assert not instance_entitlements(bound_instance, at).access
    services.subscription_set_suspended(subscription, True)
    bound_instance.refresh_from_db()
    assert not instance_entitlements(bound_instance).access


def test_fingerprint_changes_with_every_input_and_only_then(bound_instance):
    fingerprint = instance_entitlements(bound_instance).fingerprint
    assert instance_entitlements(bound_instance).fingerprint == fingerprint  # stable
    services.subscription_update(bound_instance.subscription, seats=500)  # seats do not change scopes
    bound_instance.refresh_from_db()
    assert instance_entitlements(bound_instance).fingerprint == fingerprint

    purchase = AddOnPurchaseFactory(subscription=bound_instance.subscription, add_on="duo_pro", quantity=3)
    with_pro = instance_entitlements(bound_instance).fingerprint
    assert with_pro != fingerprint

    services.add_on_purchase_update(purchase, quantity=4)
    with_more_seats = instance_entitlements(bound_instance).fingerprint
    assert with_more_seats != with_pro

    services.add_on_purchase_cancel(purchase)
    assert instance_entitlements(bound_instance).fingerprint == fingerprint

    bound_instance.gitlab_version = "18.0.0"
    assert instance_entitlements(bound_instance).fingerprint != fingerprint
