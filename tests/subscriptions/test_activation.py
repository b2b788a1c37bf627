import uuid

import pytest

from subscriptions.license_keys import license_key_digest
from subscriptions.models import Instance
from subscriptions.selectors import instance_by_license_key
from subscriptions.services import (
    Activation,
    ActivationError,
    instance_activate,
    instance_release,
    subscription_set_suspended,
)
from tests.factories import SubscriptionFactory
from tests.helpers import activate, postgres_only, run_at_once, sync

pytestmark = pytest.mark.django_db


def test_activation_returns_a_license_key_stored_only_as_a_digest(client, enterprise_subscription):
    instance_id = str(uuid.uuid4())
    payload = activate(client, enterprise_subscription.activation_code, instance_id=instance_id)
    assert payload["errors"] == [] and payload["futureSubscriptions"] == []
    key = payload["licenseKey"]
    instance = Instance.objects.get(instance_identifier=instance_id)
    assert instance.subscription == enterprise_subscription
    assert instance.license_key_digest == license_key_digest(key)
    assert key not in str(Instance.objects.values().get(pk=instance.pk))
    assert instance.hostname == "gitlab.example.test" and instance.gitlab_version == "17.11.0"


def test_code_is_accepted_with_spaces_dashes_and_lowercase(client, enterprise_subscription):
    code = enterprise_subscription.activation_code
    messy = f" {code[:6].lower()}-{code[6:12]} {code[12:]} "
    assert activate(client, messy)["licenseKey"]


@pytest.mark.parametrize("code", ["", "nope", "X" * 24, "🙂" * 5])
def test_bad_codes_are_refused(client, code, enterprise_subscription):
    payload = activate(client, code)
    assert payload["licenseKey"] is None
    assert payload["errors"] == ["The activation code is not valid."]


def test_expired_or_suspended_subscription_is_refused(client):
    import datetime as dt

    expired = SubscriptionFactory(starts_on=dt.date(2020, 1, 1), expires_on=dt.date(2021, 1, 1))
    assert activate(client, expired.activation_code)["errors"] == [
        "The subscription of this activation code has expired."
    ]
    suspended = SubscriptionFactory(suspended=True)
    assert "suspended" in activate(client, suspended.activation_code)["errors"][0]


def test_future_subscription_is_reported(client):
    import datetime as dt

    future = SubscriptionFactory(
        starts_on=dt.date.today() + dt.timedelta(days=10), expires_on=dt.date.today() + dt.timedelta(days=375)
    )
    payload = activate(client, future.activation_code)
    assert payload["licenseKey"]
    assert payload["futureSubscriptions"] == [
        {
            "cloudLicenseEnabled": True,
            "offlineCloudLicenseEnabled": False,
            "plan": "ultimate",
            "name": future.customer.name,
            "startsAt": future.starts_on.isoformat(),
            "expiresAt": future.expires_on.isoformat(),
            "usersInLicenseCount": 100,
        }
    ]


def test_reactivation_replaces_the_key_and_another_instance_is_refused(client, enterprise_subscription, signing_key):
    instance_id = str(uuid.uuid4())
    first = activate(client, enterprise_subscription.activation_code, instance_id=instance_id)["licenseKey"]
    second = activate(client, enterprise_subscription.activation_code, instance_id=instance_id)["licenseKey"]
    assert first != second
    assert instance_by_license_key(first) is None
    assert instance_by_license_key(second).instance_identifier == uuid.UUID(instance_id)
    _, body = sync(client, first)
    assert body["data"]["cloudConnectorAccess"] is None and body["errors"]

    other = activate(client, enterprise_subscription.activation_code)
    assert other["licenseKey"] is None
    assert "already in use by another instance" in other["errors"][0]
    assert Instance.objects.count() == 1


def test_release_frees_the_code_and_kills_the_key(client, enterprise_subscription):
    key = activate(client, enterprise_subscription.activation_code)["licenseKey"]
    instance = instance_by_license_key(key)
    instance_release(instance)
    assert instance_by_license_key(key) is None
    assert activate(client, enterprise_subscription.activation_code)["licenseKey"]
    assert Instance.objects.count() == 2


def test_suspended_subscription_key_still_authenticates(client, enterprise_subscription):
    key = activate(client, enterprise_subscription.activation_code)["licenseKey"]
    subscription_set_suspended(enterprise_subscription, True)
    assert instance_by_license_key(key) is not None  # known key: sync answers with a null token, not an error


def test_instance_identifier_must_be_a_uuid(enterprise_subscription):
    with pytest.raises(ActivationError, match="not a UUID"):
        instance_activate(activation_code=enterprise_subscription.activation_code, instance_identifier="not-a-uuid")


@pytest.mark.parametrize("license_key", [None, "", "cdl_wrong", "x" * 10_000])
def test_unknown_and_wrong_keys_get_the_same_answer(license_key, enterprise_subscription):
    instance_activate(activation_code=enterprise_subscription.activation_code, instance_identifier=str(uuid.uuid4()))
    assert instance_by_license_key(license_key) is None


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_activations_of_one_code_bind_exactly_one_instance(enterprise_subscription):
    def attempt():
        return instance_activate(
            activation_code=enterprise_subscription.activation_code, instance_identifier=str(uuid.uuid4())
        )

    outcomes = run_at_once(*[attempt] * 4)
    succeeded = [o for o in outcomes if isinstance(o, Activation)]
    refused = [o for o in outcomes if isinstance(o, ActivationError)]
    assert len(succeeded) == 1 and len(refused) == 3, outcomes
    assert all("already in use" in str(error) for error in refused)
    (winner,) = succeeded
    assert Instance.objects.get(subscription=enterprise_subscription).pk == winner.instance.pk
    assert Instance.objects.count() == 1
    assert instance_by_license_key(winner.license_key).pk == winner.instance.pk, "the winner's key is the one bound"
