"""Staff only; no page ever renders a private key, a token or a license key; changelists stay O(1) in queries."""

import uuid

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from issuer.keys import encryption
from issuer.keys.services import signing_key_create
from issuer.models import IssuedToken, SigningKey
from issuer.sync_state.store import sync_state_by_license_key
from issuer.tokens.services import service_access_token_sync
from subscriptions.services import instance_activate, seat_report_record
from tests.factories import AddOnPurchaseFactory

pytestmark = pytest.mark.django_db


def _pages(instance, kid):
    return [
        "/admin/",
        "/admin/catalog/",
        "/admin/keys/",
        f"/admin/keys/{kid}/activate/",
        "/admin/inspect-token/",
        f"/admin/instances/{instance.pk}/overview/",
        "/admin/subscriptions/instance/",
        f"/admin/subscriptions/instance/{instance.pk}/change/",
        "/admin/subscriptions/subscription/",
        f"/admin/subscriptions/subscription/{instance.subscription_id}/change/",
        "/admin/issuer/issuedtoken/",
        f"/admin/issuer/issuedtoken/{IssuedToken.objects.first().pk}/change/",
        "/admin/issuer/signingkey/",
        f"/admin/issuer/signingkey/{SigningKey.objects.get(kid=kid).pk}/change/",
        "/admin/subscriptions/seatreport/",
    ]


@pytest.fixture
def world(activated):
    instance, license_key = activated
    import datetime as dt

    seat_report_record(
        instance=instance,
        reported_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        gitlab_version="17.11.0",
        billable_users=3,
        max_historical_users=4,
    )
    token = service_access_token_sync(sync_state_by_license_key(license_key), gitlab_version="17.11.0").token
    pending = signing_key_create()
    return instance, license_key, token, pending


@pytest.fixture
def staff_client():
    user = User.objects.create_user("staff", password="pw-staff-123", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.usefixtures("local_signing_keys")
def test_no_page_renders_a_secret(staff_client, world):
    instance, license_key, token, pending = world
    pem_lines = []
    for key in SigningKey.objects.all():
        pem_lines += encryption.decrypt(key.private_key_encrypted).decode().splitlines()[1:3]
    for path in _pages(instance, pending.kid):
        response = staff_client.get(path)
        assert response.status_code == 200, path
        body = response.content.decode()
        assert license_key not in body, path
        assert token not in body and token.split(".")[2] not in body, path
        assert instance.license_key_digest not in body, path
        assert "PRIVATE KEY" not in body, path
        for line in pem_lines:
            assert line not in body, path


def test_inspect_token_shows_claims_not_the_token(staff_client, world):
    instance, _, token, _ = world
    response = staff_client.post("/admin/inspect-token/", {"token": token, "audience": "gitlab-ai-gateway"})
    body = response.content.decode()
    assert "Valid:" in body and str(instance.instance_identifier) in body
    assert token not in body
    header, payload, signature = token.split(".")
    tampered = ".".join([header, payload, signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]])
    bad = staff_client.post("/admin/inspect-token/", {"token": tampered}).content.decode()
    assert "Not valid:" in bad and "Signature verification failed" in bad


@pytest.mark.parametrize("who", ["anonymous", "plain user"])
def test_non_staff_get_nothing(world, who):
    instance, _, _, pending = world
    client = Client()
    if who == "plain user":
        client.force_login(User.objects.create_user("plain", password="pw-plain-123"))
    for path in _pages(instance, pending.kid):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), path
    assert (
        client.post(f"/admin/keys/{pending.kid}/activate/", {"force": "on", "reason": "test: forced"}).status_code
        == 302
    )
    assert SigningKey.objects.get(kid=pending.kid).state == "pending"


def test_key_actions_need_post_and_csrf(world):
    _, _, _, pending = world
    user = User.objects.create_user("csrf", password="pw-csrf-123", is_staff=True, is_superuser=True)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert (
        client.post(f"/admin/keys/{pending.kid}/activate/", {"force": "on", "reason": "test: forced"}).status_code
        == 403
    )
    assert client.get(f"/admin/keys/{pending.kid}/activate/").status_code == 200
    assert SigningKey.objects.get(kid=pending.kid).state == "pending"


def test_early_purge_is_explained_and_needs_force(staff_client, world):
    _, _, _, pending = world
    from issuer.keys.services import signing_key_activate

    signing_key_activate(pending.kid, force=True, reason="test: forced")
    retired = SigningKey.objects.get(state="retired")
    page = staff_client.get(f"/admin/keys/{retired.kid}/purge/").content.decode()
    assert "The policy would refuse this now" in page and "tokens it signed may be verified until" in page
    staff_client.post(f"/admin/keys/{retired.kid}/purge/", {})
    assert SigningKey.objects.filter(kid=retired.kid).exists()
    staff_client.post(f"/admin/keys/{retired.kid}/purge/", {"force": "on", "reason": "test: forced"})
    assert not SigningKey.objects.filter(kid=retired.kid).exists()


def test_repeated_failed_logins_are_locked_out(db):
    User.objects.create_user("victim", password="the-right-password", is_staff=True)
    client = Client(REMOTE_ADDR="10.9.8.7")
    for _ in range(5):
        client.post("/admin/login/", {"username": "victim", "password": "wrong"})
    locked = client.post("/admin/login/", {"username": "victim", "password": "the-right-password"})
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


def test_behind_the_proxy_an_attackers_failures_do_not_lock_the_admin_out(db, settings):
    """Every request comes from the proxy's address; the lock-out counts the address the proxy appended, and a
    forged X-Forwarded-For entry (further left) changes nothing."""
    settings.ISSUER_URL = "https://issuer.example.test"
    User.objects.create_user("victim", password="the-right-password", is_staff=True)
    attacker = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.66", secure=True)
    for number in range(5):
        forged = {"HTTP_X_FORWARDED_FOR": f"203.0.113.{number}, 198.51.100.66"}
        attacker.post("/admin/login/", {"username": "victim", "password": "wrong"}, **forged)
    assert attacker.post("/admin/login/", {"username": "victim", "password": "the-right-password"}).status_code == 429
    admin = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="192.0.2.10", secure=True)
    response = admin.post("/admin/login/", {"username": "victim", "password": "the-right-password"})
    assert response.status_code == 302 and "_auth_user_id" in admin.session


def _changelist_queries(client, path, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured)


@pytest.mark.parametrize(
    "name",
    [
        "subscriptions_instance",
        "subscriptions_subscription",
        "subscriptions_addonpurchase",
        "issuer_issuedtoken",
        "subscriptions_seatreport",
    ],
)
def test_changelist_queries_do_not_grow_with_rows(staff_client, signing_key, name, django_assert_max_num_queries):
    import datetime as dt

    path = reverse(f"admin:{name}_changelist")

    def grow(count):
        for _ in range(count):
            subscription = AddOnPurchaseFactory().subscription
            activation = instance_activate(
                activation_code=subscription.activation_code, instance_identifier=str(uuid.uuid4())
            )
            service_access_token_sync(sync_state_by_license_key(activation.license_key), gitlab_version="17.11.0")
            seat_report_record(
                instance=activation.instance,
                reported_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
                gitlab_version="17.11.0",
                billable_users=1,
                max_historical_users=1,
            )

    grow(2)
    few = _changelist_queries(staff_client, path, django_assert_max_num_queries)
    grow(20)
    many = _changelist_queries(staff_client, path, django_assert_max_num_queries)
    assert many == few, f"{name}: {few} queries with 2 rows, {many} with 22"


def test_dashboard_queries_do_not_grow_with_rows(staff_client, signing_key):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count():
        with CaptureQueriesContext(connection) as captured:
            staff_client.get("/admin/")
        return len(captured)

    for _ in range(2):
        subscription = AddOnPurchaseFactory().subscription
        instance_activate(activation_code=subscription.activation_code, instance_identifier=str(uuid.uuid4()))
    few = count()
    for _ in range(10):
        subscription = AddOnPurchaseFactory().subscription
        instance_activate(activation_code=subscription.activation_code, instance_identifier=str(uuid.uuid4()))
    assert count() == few


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"starts_on": "2027-01-01", "expires_on": "2026-01-01"}, "The subscription must start before it expires."),
        ({"seats": "0"}, "A subscription needs at least one seat."),
        ({"license_type": "platinum"}, "Select a valid choice. platinum is not one of the available choices."),
        ({"add_on_purchases-0-quantity": "0"}, "An add-on purchase needs a quantity of at least 1."),
        ({"add_on_purchases-0-expires_on": "2025-01-01"}, "The add-on purchase must start before it expires."),
    ],
)
def test_admin_form_shows_constraint_errors_and_writes_nothing(staff_client, change, message):
    from subscriptions.models import AddOnPurchase, Subscription
    from tests.factories import CustomerFactory

    form = {
        "customer": CustomerFactory().pk,
        "license_type": "ultimate",
        "seats": "10",
        "starts_on": "2026-01-01",
        "expires_on": "2027-01-01",
        "add_on_purchases-TOTAL_FORMS": "1",
        "add_on_purchases-INITIAL_FORMS": "0",
        "add_on_purchases-MIN_NUM_FORMS": "0",
        "add_on_purchases-MAX_NUM_FORMS": "1000",
        "add_on_purchases-0-add_on": "duo_pro",
        "add_on_purchases-0-quantity": "5",
        "add_on_purchases-0-started_on": "2026-01-01",
        "add_on_purchases-0-expires_on": "2027-01-01",
        **change,
    }
    response = staff_client.post("/admin/subscriptions/subscription/add/", form)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert Subscription.objects.count() == 0 and AddOnPurchase.objects.count() == 0
