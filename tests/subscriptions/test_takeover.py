"""An instance's UUID is public (its tokens' `sub`): a code alone must not take an instance from its subscription."""

import uuid

import pytest

from audit.models import AuditEvent
from subscriptions.models import Instance
from subscriptions.selectors import instance_by_license_key
from subscriptions.services import ActivationError, instance_release, instance_release_clear
from tests.factories import AddOnPurchaseFactory, SubscriptionFactory
from tests.helpers import instance_activated, sync

pytestmark = pytest.mark.django_db


def test_another_customers_code_cannot_take_a_bound_instance(client, enterprise_subscription, signing_key):
    victim_uuid = str(uuid.uuid4())
    victim = instance_activated(enterprise_subscription.activation_code, victim_uuid)
    attacker_trial = SubscriptionFactory(trial=True)
    with pytest.raises(ActivationError, match="another customer's subscription"):
        instance_activated(attacker_trial.activation_code, victim_uuid)
    instance = Instance.objects.get(instance_identifier=victim_uuid)
    assert instance.subscription == enterprise_subscription
    assert instance_by_license_key(victim.license_key) is not None
    _, body = sync(client, victim.license_key)
    assert body["data"]["cloudConnectorAccess"]["serviceToken"]["token"]
    assert not Instance.objects.filter(subscription=attacker_trial).exists()


def test_a_released_uuid_is_kept_for_its_own_customer(enterprise_subscription):
    """Issue 22, finding 2: after a release, customer B's code cannot bind a UUID released from customer A; A's
    code can; a transfer target the admin named can; every refusal is audited and names no customer to the caller."""
    instance_id = str(uuid.uuid4())
    instance_activated(enterprise_subscription.activation_code, instance_id)
    instance_release(Instance.objects.get(instance_identifier=instance_id))
    stranger = SubscriptionFactory()
    with pytest.raises(ActivationError) as refused:
        instance_activated(stranger.activation_code, instance_id)
    assert enterprise_subscription.customer.name not in str(refused.value)
    assert Instance.objects.get(instance_identifier=instance_id).subscription is None
    event = AuditEvent.objects.filter(action="instance.rebind_refused").get()
    assert event.actor_name == instance_id
    same_customer = SubscriptionFactory(customer=enterprise_subscription.customer)
    assert instance_activated(same_customer.activation_code, instance_id).instance.subscription == same_customer


def test_a_release_may_name_a_transfer_target(enterprise_subscription):
    instance_id = str(uuid.uuid4())
    instance_activated(enterprise_subscription.activation_code, instance_id)
    target = SubscriptionFactory()
    instance_release(Instance.objects.get(instance_identifier=instance_id), transfer_to=target.customer)
    with pytest.raises(ActivationError):
        instance_activated(SubscriptionFactory().activation_code, instance_id)
    assert instance_activated(target.activation_code, instance_id).instance.subscription == target
    bound = Instance.objects.get(instance_identifier=instance_id)
    assert bound.released_from is None and bound.release_transfer_to is None  # the reservation is spent


def test_an_admin_clears_the_reservation(enterprise_subscription):
    instance_id = str(uuid.uuid4())
    instance_activated(enterprise_subscription.activation_code, instance_id)
    instance_release(Instance.objects.get(instance_identifier=instance_id))
    instance_release_clear(Instance.objects.get(instance_identifier=instance_id))
    other = SubscriptionFactory()
    assert instance_activated(other.activation_code, instance_id).instance.subscription == other


def test_a_never_activated_uuid_is_first_come_first_served():
    assert (
        instance_activated(SubscriptionFactory().activation_code, str(uuid.uuid4())).instance.subscription is not None
    )


def test_the_same_customers_renewal_code_moves_the_instance(enterprise_subscription):
    instance_id = str(uuid.uuid4())
    old = instance_activated(enterprise_subscription.activation_code, instance_id)
    renewal = SubscriptionFactory(customer=enterprise_subscription.customer)
    moved = instance_activated(renewal.activation_code, instance_id)
    assert moved.instance.subscription == renewal
    assert instance_by_license_key(old.license_key) is None


def test_reactivating_its_own_subscription_keeps_working(enterprise_subscription):
    instance_id = str(uuid.uuid4())
    first = instance_activated(enterprise_subscription.activation_code, instance_id)
    second = instance_activated(enterprise_subscription.activation_code, instance_id)
    assert instance_by_license_key(first.license_key) is None
    assert instance_by_license_key(second.license_key).subscription == enterprise_subscription


def test_a_released_instance_activated_by_another_customer_never_gets_the_old_token(
    client, enterprise_subscription, signing_key
):
    instance_id = str(uuid.uuid4())
    first = instance_activated(enterprise_subscription.activation_code, instance_id)
    _, body = sync(client, first.license_key)
    old_token = body["data"]["cloudConnectorAccess"]["serviceToken"]["token"]
    other_customer = AddOnPurchaseFactory(add_on="duo_enterprise", quantity=50).subscription  # the same entitlements
    instance_release(Instance.objects.get(instance_identifier=instance_id), transfer_to=other_customer.customer)
    second = instance_activated(other_customer.activation_code, instance_id)
    _, body = sync(client, second.license_key)
    assert body["data"]["cloudConnectorAccess"]["serviceToken"]["token"] != old_token


def test_the_back_office_names_a_transfer_target_on_release(client, enterprise_subscription):
    from django.contrib.auth.models import User

    from tests.helpers import role

    instance_id = str(uuid.uuid4())
    instance_activated(enterprise_subscription.activation_code, instance_id)
    instance = Instance.objects.get(instance_identifier=instance_id)
    target = SubscriptionFactory()
    support = User.objects.create_user("sam", password="pw-sam-12345", is_staff=True)
    support.groups.add(role("support"))
    client.force_login(support)
    changelist = "/admin/subscriptions/instance/"
    page = client.post(changelist, {"action": "release_to", "_selected_action": [instance.pk]})
    assert page.status_code == 200 and "Release for a transfer" in page.content.decode()
    bad = client.post(
        changelist,
        {
            "action": "release_to",
            "_selected_action": [instance.pk],
            "apply": "1",
            "transfer_to": "999999",
            "reason": "moved to the new owner",
        },
    )
    assert bad.status_code == 200 and Instance.objects.get(pk=instance.pk).subscription is not None
    done = client.post(
        changelist,
        {
            "action": "release_to",
            "_selected_action": [instance.pk],
            "apply": "1",
            "transfer_to": target.customer_id,
            "reason": "moved to the new owner",
        },
    )
    assert done.status_code == 302
    released = Instance.objects.get(pk=instance.pk)
    assert released.subscription is None and released.release_transfer_to_id == target.customer_id
    assert instance_activated(target.activation_code, instance_id).instance.subscription == target
