import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from knox.models import AuthToken
from rest_framework.test import APIClient

from subscriptions.models import AddOnPurchase, Subscription
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    from tests.helpers import role

    user = User.objects.create_user("staff", password="pw-staff-123", is_staff=True)
    user.groups.add(role("billing"))
    client = APIClient()
    _, token = AuthToken.objects.create(user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_non_staff_get_nothing(client):
    assert client.get("/api/v1/admin/subscriptions/").status_code in (401, 403)
    user = User.objects.create_user("plain", password="pw-plain-123")
    api = APIClient()
    api.force_authenticate(user)
    assert api.get("/api/v1/admin/subscriptions/").status_code == 403


def test_create_subscription_and_purchase_through_the_api(staff):
    customer = staff.post(
        "/api/v1/admin/customers/", {"name": "ACME", "contact_email": "a@acme.test"}, format="json"
    ).json()
    subscription = staff.post(
        "/api/v1/admin/subscriptions/",
        {
            "customer": customer["id"],
            "license_type": "ultimate",
            "seats": 10,
            "starts_on": "2026-01-01",
            "expires_on": "2027-01-01",
        },
        format="json",
    )
    assert subscription.status_code == 201, subscription.content
    sid = subscription.json()["id"]
    assert len(subscription.json()["activation_code"]) == 24
    purchase = staff.post(
        "/api/v1/admin/add_on_purchases/",
        {
            "subscription": sid,
            "add_on": "duo_enterprise",
            "quantity": 5,
            "started_on": "2026-01-01",
            "expires_on": "2027-01-01",
        },
        format="json",
    )
    assert purchase.status_code == 201, purchase.content
    cancelled = staff.post(f"/api/v1/admin/add_on_purchases/{purchase.json()['id']}/cancel/").json()
    assert cancelled["cancelled_at"] and cancelled["active"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"license_type": "gold"}, "license_type"),
        ({"starts_on": "2027-01-01", "expires_on": "2026-01-01"}, "non_field_errors"),
        ({"seats": 0}, "non_field_errors"),
    ],
)
def test_invalid_subscription_is_400_and_writes_nothing(staff, body, field):
    payload = {
        "customer": CustomerFactory().id,
        "license_type": "ultimate",
        "seats": 10,
        "starts_on": "2026-01-01",
        "expires_on": "2027-01-01",
        **body,
    }
    response = staff.post("/api/v1/admin/subscriptions/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert Subscription.objects.count() == 0


def test_invalid_purchase_is_400(staff, enterprise_subscription):
    response = staff.post(
        "/api/v1/admin/add_on_purchases/",
        {
            "subscription": enterprise_subscription.id,
            "add_on": "duo_gold",
            "quantity": 5,
            "started_on": "2026-01-01",
            "expires_on": "2027-01-01",
        },
        format="json",
    )
    assert response.status_code == 400 and "add_on" in response.json()
    assert AddOnPurchase.objects.count() == 1


def test_instances_never_expose_the_license_key(staff, activated):
    instance, key = activated
    body = staff.get("/api/v1/admin/instances/").content.decode()
    assert key not in body and instance.license_key_digest not in body
    assert str(instance.instance_identifier) in body
    released = staff.post(f"/api/v1/admin/instances/{instance.id}/release/").json()
    assert released["subscription"] is None


def test_openapi_schema_generates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    schema = (tmp_path / "schema.yml").read_text()
    assert "/api/v1/service_access_tokens" in schema and "licenseKey" in schema
    assert "/api/v1/admin/subscriptions/" in schema
