"""GitLab 18.x-19.x: the newest activation text, its headers and the seat link's future subscriptions, with the
17.x text still working (PROTOCOL §2.1, §6)."""

import datetime as dt
import json
import uuid

import pytest

from subscriptions.models import Instance
from subscriptions.services import instance_release
from tests.factories import CustomerFactory, SubscriptionFactory, today
from tests.helpers import (
    ACTIVATE_MUTATION_19,
    ACTIVATION_TEXTS,
    GITLAB_19_HEADERS,
    activate,
    graphql_post,
    sync,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def renewal(enterprise_subscription):
    """The same customer's next term, starting after the current one."""
    current = enterprise_subscription
    return SubscriptionFactory(
        customer=current.customer,
        license_type="premium",
        seats=40,
        starts_on=current.expires_on,
        expires_on=current.expires_on + dt.timedelta(days=365),
    )


@pytest.mark.parametrize("text", ACTIVATION_TEXTS)
def test_activation_lists_the_customers_future_subscriptions(client, text, enterprise_subscription, renewal):
    SubscriptionFactory(starts_on=today() + dt.timedelta(days=5))  # another customer's: never listed
    payload = activate(client, enterprise_subscription.activation_code, text=text)
    assert payload["licenseKey"] and payload["errors"] == []
    expected = {
        "cloudLicenseEnabled": True,
        "offlineCloudLicenseEnabled": False,
        "plan": "premium",
        "name": renewal.customer.name,
        "startsAt": renewal.starts_on.isoformat(),
        "expiresAt": renewal.expires_on.isoformat(),
        "usersInLicenseCount": 40,
    }
    if text == "19.x":
        expected |= {"company": renewal.customer.name, "email": renewal.customer.contact_email}
    assert payload["futureSubscriptions"] == [expected]


@pytest.mark.parametrize("text", ACTIVATION_TEXTS)
def test_no_future_subscription_is_an_empty_list(client, text, enterprise_subscription):
    assert activate(client, enterprise_subscription.activation_code, text=text)["futureSubscriptions"] == []


def test_new_subscription_is_true_only_on_the_first_binding(client, enterprise_subscription):
    code = enterprise_subscription.activation_code
    instance_id = str(uuid.uuid4())
    assert activate(client, code, text="19.x", instance_id=instance_id)["newSubscription"] is True
    assert activate(client, code, text="19.x", instance_id=instance_id)["newSubscription"] is False  # re-activation
    instance_release(Instance.objects.get(instance_identifier=instance_id))
    assert activate(client, code, text="19.x")["newSubscription"] is False  # another instance, after a release


def test_the_17x_text_also_sets_new_subscription(client, enterprise_subscription):
    assert activate(client, enterprise_subscription.activation_code, text="17.x")["licenseKey"]
    enterprise_subscription.refresh_from_db()
    assert enterprise_subscription.first_activated_at is not None


def test_a_refused_activation_is_not_a_new_subscription(client):
    payload = activate(client, "NOT-A-CODE", text="19.x")
    assert payload == {
        "licenseKey": None,
        "futureSubscriptions": [],
        "newSubscription": False,
        "errors": ["The activation code is not valid."],
    }


def test_unique_instance_id_is_stored_and_kept_when_17x_reactivates(client, enterprise_subscription):
    instance_id = str(uuid.uuid4())
    activate(
        client,
        enterprise_subscription.activation_code,
        text="19.x",
        instance_id=instance_id,
        unique_instance_id="anon-42",
    )
    instance = Instance.objects.get(instance_identifier=instance_id)
    assert instance.unique_instance_id == "anon-42"
    activate(client, enterprise_subscription.activation_code, text="17.x", instance_id=instance_id)
    instance.refresh_from_db()
    assert instance.unique_instance_id == "anon-42"


@pytest.mark.parametrize(
    ("value", "reason"),
    [("x" * 65, "longer than 64 characters"), ("abc\x07def", "control characters"), ("abc\ndef", "control")],
)
def test_bad_unique_instance_ids_are_refused_and_nothing_is_written(client, enterprise_subscription, value, reason):
    payload = activate(client, enterprise_subscription.activation_code, text="19.x", unique_instance_id=value)
    assert payload["licenseKey"] is None and reason in payload["errors"][0]
    assert not Instance.objects.exists()
    enterprise_subscription.refresh_from_db()
    assert enterprise_subscription.first_activated_at is None


@pytest.mark.parametrize("text", ACTIVATION_TEXTS)
def test_an_unknown_input_field_is_a_validation_error_naming_it(client, text, enterprise_subscription):
    query = ACTIVATION_TEXTS[text].replace(
        "hostname: $hostname}", "hostname: $hostname, uniqueInstanceUuid: $hostname}"
    )
    response, body = graphql_post(client, query, {})
    assert response.status_code == 400
    assert any("uniqueInstanceUuid" in error["message"] for error in body["errors"])


def test_an_unknown_output_field_is_a_validation_error_naming_it(client):
    query = ACTIVATE_MUTATION_19.replace("newSubscription", "newSubscriptionz")
    response, body = graphql_post(client, query, {})
    assert response.status_code == 400
    assert any("newSubscriptionz" in error["message"] for error in body["errors"])


def test_headers_of_19x_are_recorded_and_empty_user_ids_are_fine(client, activated):
    instance, key = activated
    response, body = sync(
        client, key, "19.1.0-ee", **GITLAB_19_HEADERS, **{"X-Gitlab-Instance-Id": str(instance.instance_identifier)}
    )
    assert response.status_code == 200 and body["data"]["cloudConnectorAccess"]["serviceToken"]["token"]
    instance.refresh_from_db()
    assert instance.deployment_type == "self-managed"
    assert instance.last_seen_instance_id == str(instance.instance_identifier)
    assert instance.gitlab_version == "19.1.0-ee"


def test_seat_link_answers_future_subscriptions_in_snake_case(client, activated, renewal):
    instance, key = activated
    body = {
        "gitlab_version": "19.1.0-ee",
        "timestamp": "2026-11-01T00:00:00Z",
        "license_key": key,
        "max_historical_user_count": 10,
        "billable_users_count": 9,
        "instance_id": str(instance.instance_identifier),
        "unique_instance_id": "anon-1",
    }
    response = client.post("/api/v1/seat_links", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["future_subscriptions"] == [
        {
            "cloud_license_enabled": True,
            "offline_cloud_license_enabled": False,
            "plan": "premium",
            "company": renewal.customer.name,
            "email": renewal.customer.contact_email,
            "name": renewal.customer.name,
            "starts_at": renewal.starts_on.isoformat(),
            "expires_at": renewal.expires_on.isoformat(),
            "users_in_license_count": 40,
        }
    ]


def test_seat_link_without_future_subscriptions_answers_an_empty_list(client, activated):
    instance, key = activated
    body = {
        "timestamp": "2026-11-01T00:00:00Z",
        "license_key": key,
        "max_historical_user_count": 1,
        "billable_users_count": 1,
    }
    response = client.post("/api/v1/seat_links", data=json.dumps(body), content_type="application/json")
    assert response.json()["future_subscriptions"] == []


def test_a_suspended_future_subscription_is_not_listed(client, enterprise_subscription):
    SubscriptionFactory(
        customer=enterprise_subscription.customer, starts_on=today() + dt.timedelta(days=3), suspended=True
    )
    CustomerFactory()
    assert activate(client, enterprise_subscription.activation_code, text="19.x")["futureSubscriptions"] == []
