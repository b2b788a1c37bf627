"""Every back-office door against every role (subscriptions/roles.py): staff status alone opens nothing."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from issuer.keys.services import signing_key_create
from issuer.models import SigningKey
from subscriptions.models import Instance
from tests.helpers import user_in

pytestmark = pytest.mark.django_db

ROLES = ["no role", "viewer", "support", "billing", "key operator", "superuser"]
READERS = {"viewer", "support", "billing", "key operator", "superuser"}
SUPPORT = {"support", "billing", "superuser"}
BILLING = {"billing", "superuser"}
KEYS = {"key operator", "superuser"}


@pytest.fixture
def world(activated):
    instance, _ = activated
    return {"instance": instance, "subscription": instance.subscription, "pending": signing_key_create()}


PAGES = [
    ("/admin/keys/", READERS),
    ("/admin/keys/{kid}/activate/", KEYS),
    ("/admin/inspect-token/", READERS),
    ("/admin/instances/{instance}/overview/", READERS),
    ("/admin/subscriptions/instance/", READERS),
    ("/admin/subscriptions/subscription/", READERS),
    ("/admin/subscriptions/subscription/add/", BILLING),
    ("/admin/subscriptions/customer/add/", BILLING),
    ("/admin/subscriptions/addonpurchase/", READERS),
    ("/admin/issuer/signingkey/", READERS),
    ("/admin/issuer/issuedtoken/", READERS),
    ("/admin/catalog/", set(ROLES)),
    ("/admin/", set(ROLES)),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("path", "allowed"), PAGES, ids=[path for path, _ in PAGES])
def test_pages_open_only_for_their_roles(world, role, path, allowed):
    client = Client()
    client.force_login(user_in(role))
    url = path.format(kid=world["pending"].kid, instance=world["instance"].pk)
    status = client.get(url).status_code
    assert (status == 200) is (role in allowed), (role, url, status)


@pytest.mark.parametrize("role", ROLES)
def test_activation_codes_are_shown_only_to_support_and_up(world, role):
    code = world["subscription"].activation_code
    client = Client()
    user = user_in(role)
    client.force_login(user)
    page = client.get("/admin/subscriptions/subscription/").content.decode()
    change = client.get(f"/admin/subscriptions/subscription/{world['subscription'].pk}/change/").content.decode()
    api = APIClient()
    api.force_authenticate(user)
    listed = api.get("/api/v1/admin/subscriptions/")
    sees = role in SUPPORT
    assert (code in page) is sees and (code in change) is sees
    if role in READERS:
        assert ("activation_code" in listed.json()["results"][0]) is sees
    else:
        assert listed.status_code == 403


@pytest.mark.parametrize("role", ROLES)
def test_no_role_sees_the_fleet_on_the_dashboard(world, role):
    client = Client()
    client.force_login(user_in(role))
    page = client.get("/admin/").content.decode()
    assert ('id="no-role"' in page) is (role == "no role")
    assert ('data-metric="customers"' in page) is (role != "no role")


@pytest.mark.parametrize("role", ROLES)
def test_admin_actions_act_only_for_their_roles(world, role):
    client = Client()
    client.force_login(user_in(role))
    instance = world["instance"]
    client.post(
        "/admin/subscriptions/instance/",
        {"action": "release", "_selected_action": [instance.pk], "apply": "1", "reason": "customer moved"},
    )
    assert (Instance.objects.get(pk=instance.pk).subscription_id is None) is (role in SUPPORT)


@pytest.mark.parametrize("role", ROLES)
def test_key_page_actions_only_for_key_operators(world, role):
    client = Client()
    client.force_login(user_in(role))
    before = SigningKey.objects.count()
    response = client.post("/admin/keys/create/")
    assert (response.status_code == 302) is (role in KEYS)
    assert (SigningKey.objects.count() == before + 1) is (role in KEYS)


API = [
    ("get", "/api/v1/admin/subscriptions/", None, READERS),
    ("get", "/api/v1/admin/instances/", None, READERS),
    ("get", "/api/v1/admin/signing_keys/", None, READERS),
    ("post", "/api/v1/admin/customers/", {"name": "New Co"}, BILLING),
    ("post", "/api/v1/admin/instances/{instance}/suspend/", {"suspended": True}, SUPPORT),
    ("post", "/api/v1/admin/instances/{instance}/release/", {}, SUPPORT),
    ("post", "/api/v1/admin/subscriptions/{subscription}/regenerate_activation_code/", {}, SUPPORT),
    ("post", "/api/v1/admin/subscriptions/{subscription}/suspend/", {"suspended": True}, BILLING),
    ("post", "/api/v1/admin/signing_keys/", {}, KEYS),
    ("post", "/api/v1/admin/signing_keys/{kid}/retire/", {}, KEYS),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "path", "body", "allowed"), API, ids=[f"{m} {p}" for m, p, _, _ in API])
def test_api_routes_answer_only_their_roles(world, role, method, path, body, allowed):
    api = APIClient()
    api.force_authenticate(user_in(role))
    url = path.format(instance=world["instance"].pk, subscription=world["subscription"].pk, kid=world["pending"].kid)
    response = getattr(api, method)(url, body, format="json")
    assert (response.status_code in (200, 201)) is (role in allowed), (role, url, response.status_code)
    if role not in allowed:
        assert response.status_code == 403
