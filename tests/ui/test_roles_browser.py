"""Each role, in Chromium: the navigation offers only what the role may open, and the keys page offers actions only
to key operators."""

import pytest
from django.contrib.auth.models import User

from issuer.keys.services import signing_key_ensure_active
from tests.helpers import role as role_group_named

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NAV = {
    "no role": {"Dashboard", "Catalog"},
    "viewer": {
        "Dashboard",
        "Customers",
        "Subscriptions",
        "Instances",
        "Catalog",
        "Keys",
        "Inspect token",
        "Audit trail",
    },
    "key operator": {
        "Dashboard",
        "Customers",
        "Subscriptions",
        "Instances",
        "Catalog",
        "Keys",
        "Inspect token",
        "Audit trail",
    },
}


@pytest.mark.parametrize("role", list(NAV))
def test_each_role_sees_its_own_back_office(page, live_server, shot, role):
    signing_key_ensure_active()
    user = User.objects.create_user(role.replace(" ", "-"), password="correct-horse-battery", is_staff=True)
    if role != "no role":
        user.groups.add(role_group_named(role))
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", "correct-horse-battery")
    page.keyboard.press("Enter")
    page.wait_for_selector(".issuer-nav")
    assert set(page.locator(".issuer-nav a").all_inner_texts()) == NAV[role]
    shot(page, f"40-role-{user.username}-dashboard")
    if "Keys" in NAV[role]:
        page.goto(f"{live_server.url}/admin/keys/")
        operator = role == "key operator"
        assert (page.locator("input[value='Create a pending key']").count() == 1) is operator
        assert (page.locator("a:has-text('Revoke')").count() > 0) is operator
        shot(page, f"41-role-{user.username}-keys")
