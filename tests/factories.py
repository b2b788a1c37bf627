import datetime as dt

import factory
from django.utils import timezone

from subscriptions.models import AddOnPurchase, Customer, Subscription


def today() -> dt.date:
    return timezone.now().date()


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    name = factory.Sequence(lambda n: f"Customer {n}")
    contact_email = factory.Sequence(lambda n: f"admin{n}@example.test")


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    customer = factory.SubFactory(CustomerFactory)
    license_type = "ultimate"
    seats = 100
    starts_on = factory.LazyFunction(lambda: today() - dt.timedelta(days=30))
    expires_on = factory.LazyFunction(lambda: today() + dt.timedelta(days=335))


class AddOnPurchaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AddOnPurchase

    subscription = factory.SubFactory(SubscriptionFactory)
    add_on = "duo_enterprise"
    quantity = 50
    started_on = factory.LazyAttribute(lambda purchase: purchase.subscription.starts_on)
    expires_on = factory.LazyAttribute(lambda purchase: purchase.subscription.expires_on)
