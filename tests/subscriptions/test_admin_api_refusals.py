"""Issue 22 (low): an update through the admin API applies what its service applies, and refuses (400, naming
them) the fields it would otherwise have dropped with a 200."""

import datetime as dt

import pytest
from django.contrib.auth.models import User
from knox.models import AuthToken
from rest_framework.test import APIClient

from subscriptions.models import AddOnPurchase, Subscription
from tests.factories import AddOnPurchaseFactory, CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def billing():
    from tests.helpers import role

    user = User.objects.create_user("billing", password="pw-billing-123", is_staff=True)
    user.groups.add(role("billing"))
    client = APIClient()
    _, token = AuthToken.objects.create(user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def purchase():
    return AddOnPurchaseFactory(add_on="duo_enterprise", quantity=50)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda s: {"license_type": "premium"}, "license_type"),
        (lambda s: {"trial": True}, "trial"),
        (lambda s: {"starts_on": (s.starts_on - dt.timedelta(days=1)).isoformat()}, "starts_on"),
        (lambda s: {"customer": CustomerFactory().pk}, "customer"),
        (lambda s: {"suspended": True}, "suspended"),
        (lambda s: {"no_such_field": 1}, "no_such_field"),
    ],
)
def test_a_subscription_update_refuses_what_it_would_drop(billing, purchase, change, field):
    subscription = purchase.subscription
    before = Subscription.objects.filter(pk=subscription.pk).values().get()
    body = {"seats": subscription.seats + 5, **change(subscription)}
    response = billing.patch(f"/api/v1/admin/subscriptions/{subscription.pk}/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert Subscription.objects.filter(pk=subscription.pk).values().get() == before, "nothing half-applied"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda p: {"add_on": "duo_pro"}, "add_on"),
        (lambda p: {"trial": True}, "trial"),
        (lambda p: {"started_on": (p.started_on + dt.timedelta(days=1)).isoformat()}, "started_on"),
        (lambda p: {"subscription": AddOnPurchaseFactory().subscription_id}, "subscription"),
        (lambda p: {"cancelled_at": "2026-01-01T00:00:00Z"}, "cancelled_at"),
    ],
)
def test_a_purchase_update_refuses_what_it_would_drop(billing, purchase, change, field):
    before = AddOnPurchase.objects.filter(pk=purchase.pk).values().get()
    response = billing.patch(
        f"/api/v1/admin/add_on_purchases/{purchase.pk}/", {"quantity": 60, **change(purchase)}, format="json"
    )
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert AddOnPurchase.objects.filter(pk=purchase.pk).values().get() == before


def test_what_the_service_applies_still_applies(billing, purchase):
    subscription = purchase.subscription
    new_end = (subscription.expires_on + dt.timedelta(days=30)).isoformat()
    response = billing.patch(
        f"/api/v1/admin/subscriptions/{subscription.pk}/", {"seats": 7, "expires_on": new_end}, format="json"
    )
    assert response.status_code == 200, response.content
    subscription.refresh_from_db()
    assert subscription.seats == 7 and subscription.expires_on.isoformat() == new_end
    assert (
        billing.patch(f"/api/v1/admin/add_on_purchases/{purchase.pk}/", {"quantity": 9}, format="json").status_code
        == 200
    )
    purchase.refresh_from_db()
    assert purchase.quantity == 9


def test_a_put_of_what_a_get_returned_with_new_seats_is_applied(billing, purchase):
    path = f"/api/v1/admin/subscriptions/{purchase.subscription_id}/"
    body = billing.get(path).json()
    body["seats"] = 12
    response = billing.put(path, body, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["seats"] == 12
    purchase_path = f"/api/v1/admin/add_on_purchases/{purchase.pk}/"
    body = billing.get(purchase_path).json()
    body["quantity"] = 70
    assert billing.put(purchase_path, body, format="json").status_code == 200
