import uuid

import pytest
from django.core.cache import cache

from issuer.keys.selectors import keyset_invalidate
from issuer.keys.services import signing_key_ensure_active
from subscriptions.services import instance_activate
from tests.factories import AddOnPurchaseFactory, SubscriptionFactory


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Every test starts with an empty cache and no key set memoized in this process."""
    keyset_invalidate()
    cache.clear()
    yield
    keyset_invalidate()
    cache.clear()


@pytest.fixture
def signing_key(db):
    return signing_key_ensure_active()


@pytest.fixture
def enterprise_subscription(db):
    purchase = AddOnPurchaseFactory(add_on="duo_enterprise", quantity=50)
    return purchase.subscription


@pytest.fixture
def pro_subscription(db):
    purchase = AddOnPurchaseFactory(
        add_on="duo_pro", quantity=10, subscription=SubscriptionFactory(license_type="premium")
    )
    return purchase.subscription


@pytest.fixture
def activated(enterprise_subscription, signing_key):
    """(instance, license_key) of an instance bound to an ultimate + Duo Enterprise subscription."""
    activation = instance_activate(
        activation_code=enterprise_subscription.activation_code,
        instance_identifier=str(uuid.uuid4()),
        hostname="gitlab.example.test",
        gitlab_version="17.11.0",
    )
    return activation.instance, activation.license_key
