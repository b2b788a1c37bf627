"""Issue 27 in Chromium: a billing admin sells with the defaults (no code before saving, add-on dates from the
subscription), then renews, with the add-on that ended with the subscription moved along; no console error."""

import pytest
from django.contrib.auth.models import User

from subscriptions.models import Subscription
from subscriptions.terms import one_year_after
from tests.factories import CustomerFactory, today
from tests.helpers import role as role_group_named

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_billing_admin_sells_and_renews(page, live_server, shot):
    user = User.objects.create_user("billing", password="correct-horse-battery", is_staff=True)
    user.groups.add(role_group_named("billing"))
    CustomerFactory(name="ACME Corp")
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    base = live_server.url
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "billing")
    page.fill("#id_password", "correct-horse-battery")
    page.keyboard.press("Enter")
    page.wait_for_selector(".issuer-nav")

    page.goto(f"{base}/admin/subscriptions/subscription/add/")
    assert page.locator(".field-activation_code").count() == 0
    assert page.input_value("#id_starts_on") == today().isoformat()
    page.click("#id_customer + .select2 .select2-selection")
    page.fill(".select2-search__field", "ACME")
    page.click(".select2-results__option:has-text('ACME Corp')")
    page.select_option("#id_license_type", "ultimate")
    page.fill("#id_seats", "100")
    page.click("#add_on_purchases-group .add-row a")
    page.select_option("#id_add_on_purchases-0-add_on", "duo_pro")
    page.fill("#id_add_on_purchases-0-quantity", "20")
    shot(page, "60-sell-with-defaults")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    subscription = Subscription.objects.get()
    purchase = subscription.add_on_purchases.get()
    assert subscription.expires_on == one_year_after(today()) == purchase.expires_on
    assert page.inner_text(".field-activation_code .readonly").strip() == subscription.activation_code
    assert page.locator("#subscription-instances").count() == 1

    page.click("#renew-link")
    page.wait_for_selector("#renew-form")
    assert page.input_value("#id_expires_on") == one_year_after(subscription.expires_on).isoformat()
    assert page.is_checked(f"input[name=add_ons][value='{purchase.pk}']")
    shot(page, "61-renew")
    page.click("#renew-form input[type=submit]")
    page.wait_for_selector(".messagelist .success")
    renewed = one_year_after(subscription.expires_on)
    assert Subscription.objects.get().expires_on == renewed
    assert subscription.add_on_purchases.get().expires_on == renewed
    assert page.locator("#add-ons-ending-early").count() == 0
    shot(page, "62-renewed")
    assert not errors, errors
