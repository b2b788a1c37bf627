import pytest

from subscriptions.models import AddOnPurchase, Subscription
from tests.factories import AddOnPurchaseFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def test_any_of_finds_what_in_finds():
    subscriptions = SubscriptionFactory.create_batch(4)
    wanted = [subscriptions[0].pk, subscriptions[2].pk, 10**9]
    assert set(Subscription.objects.filter(pk__any_of=wanted)) == set(Subscription.objects.filter(pk__in=wanted))
    assert {s.pk for s in Subscription.objects.filter(pk__any_of=wanted)} == {subscriptions[0].pk, subscriptions[2].pk}


def test_any_of_on_a_foreign_key_column_and_excluded():
    purchases = [AddOnPurchaseFactory() for _ in range(3)]
    ids = [purchases[0].subscription_id, purchases[1].subscription_id]
    assert set(AddOnPurchase.objects.filter(subscription_id__any_of=ids)) == set(purchases[:2])
    assert set(AddOnPurchase.objects.exclude(subscription_id__any_of=ids)) == {purchases[2]}


def test_any_of_an_empty_list_matches_nothing():
    SubscriptionFactory()
    assert list(Subscription.objects.filter(pk__any_of=[])) == []
    assert Subscription.objects.exclude(pk__any_of=[]).count() == 1


def test_any_of_a_subquery_is_an_in_subquery():
    purchase = AddOnPurchaseFactory()
    SubscriptionFactory()
    ids = AddOnPurchase.objects.values("subscription_id")
    assert list(Subscription.objects.filter(pk__any_of=ids)) == [purchase.subscription]


def test_any_of_ignores_none_as_in_does():
    subscriptions = SubscriptionFactory.create_batch(3)
    wanted = [subscriptions[0].pk, None]
    assert set(Subscription.objects.filter(pk__any_of=wanted)) == set(Subscription.objects.filter(pk__in=wanted))
    assert set(Subscription.objects.exclude(pk__any_of=wanted)) == set(Subscription.objects.exclude(pk__in=wanted))
    assert Subscription.objects.exclude(pk__any_of=[None]).count() == 3
