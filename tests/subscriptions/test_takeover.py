"""An instance's UUID is public (its tokens' `sub`): a code alone must not take an instance from its subscription."""

import uuid

import pytest

from subscriptions.models import Instance
from subscriptions.selectors import instance_by_license_key
from subscriptions.services import ActivationError, instance_activate, instance_release
from tests.factories import AddOnPurchaseFactory, SubscriptionFactory
from tests.helpers import sync

pytestmark = pytest.mark.django_db


def activate(code, instance_id):
    return instance_activate(activation_code=code, instance_identifier=instance_id)


def test_another_customers_code_cannot_take_a_bound_instance(client, enterprise_subscription, signing_key):
    victim_uuid = str(uuid.uuid4())
    victim = activate(enterprise_subscription.activation_code, victim_uuid)
    attacker_trial = SubscriptionFactory(trial=True)
    with pytest.raises(ActivationError, match="another customer's subscription"):
        activate(attacker_trial.activation_code, victim_uuid)
    instance = Instance.objects.get(instance_identifier=victim_uuid)
    assert instance.subscription == enterprise_subscription
    assert instance_by_license_key(victim.license_key) is not None
    _, body = sync(client, victim.license_key)
    assert body["data"]["cloudConnectorAccess"]["serviceToken"]["token"]
    assert not Instance.objects.filter(subscription=attacker_trial).exists()


def test_after_an_admin_release_the_instance_may_activate_another_code(enterprise_subscription):
    instance_id = str(uuid.uuid4())
    activate(enterprise_subscription.activation_code, instance_id)
    instance_release(Instance.objects.get(instance_identifier=instance_id))
    other = SubscriptionFactory()
    assert activate(other.activation_code, instance_id).instance.subscription == other


def test_the_same_customers_renewal_code_moves_the_instance(enterprise_subscription):
    instance_id = str(uuid.uuid4())
    old = activate(enterprise_subscription.activation_code, instance_id)
    renewal = SubscriptionFactory(customer=enterprise_subscription.customer)
    moved = activate(renewal.activation_code, instance_id)
    assert moved.instance.subscription == renewal
    assert instance_by_license_key(old.license_key) is None


def test_reactivating_its_own_subscription_keeps_working(enterprise_subscription):
    instance_id = str(uuid.uuid4())
    first = activate(enterprise_subscription.activation_code, instance_id)
    second = activate(enterprise_subscription.activation_code, instance_id)
    assert instance_by_license_key(first.license_key) is None
    assert instance_by_license_key(second.license_key).subscription == enterprise_subscription


def test_a_released_instance_activated_by_another_customer_never_gets_the_old_token(
    client, enterprise_subscription, signing_key
):
    instance_id = str(uuid.uuid4())
    first = activate(enterprise_subscription.activation_code, instance_id)
    _, body = sync(client, first.license_key)
    old_token = body["data"]["cloudConnectorAccess"]["serviceToken"]["token"]
    instance_release(Instance.objects.get(instance_identifier=instance_id))
    other_customer = AddOnPurchaseFactory(add_on="duo_enterprise", quantity=50).subscription  # the same entitlements
    second = activate(other_customer.activation_code, instance_id)
    _, body = sync(client, second.license_key)
    assert body["data"]["cloudConnectorAccess"]["serviceToken"]["token"] != old_token
