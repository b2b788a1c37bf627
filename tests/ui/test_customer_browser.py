"""Issue 27 in Chromium, at 1440 and 390 px, with no console error and no Content-Security-Policy violation:
a billing admin sells, extends and suspends (the suspension asks a reason first); a support admin finds a
customer, an instance on the customer's page, and who changed it in the audit trail. Lists fit at 1440 px with
the sidebar collapsed."""

import pytest
from django.contrib.auth.models import User

from audit.context import Actor, acting
from audit.models import AuditEvent
from subscriptions.models import Subscription
from subscriptions.terms import one_year_after
from tests.factories import CustomerFactory, today
from tests.helpers import role as role_group_named

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIEWPORTS = {"1440": (1440, 900), "390": (390, 844)}


def _user(name: str, role_name: str) -> None:
    user = User.objects.create_user(name, password=f"pw-{name}-correct-horse", is_staff=True)
    user.groups.add(role_group_named(role_name))


def _watched(browser, viewport: str):
    width, height = VIEWPORTS[viewport]
    context = browser.new_context(viewport={"width": width, "height": height}, is_mobile=width < 800)
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems = []
    page.on(
        "console",
        lambda message: (
            problems.append(f"{page.url}: {message.text[:120]}")
            if message.type == "error" or "Content Security Policy" in message.text
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(f"{page.url}: {error}"))
    return context, page, problems


def _login(page, base: str, name: str) -> None:
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", name)
    page.fill("#id_password", f"pw-{name}-correct-horse")
    page.keyboard.press("Enter")
    page.wait_for_selector(".issuer-nav")


def _fits(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0, page.url


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_a_billing_admin_sells_extends_and_suspends(browser, live_server, shot, viewport):
    _user("bill", "billing")
    CustomerFactory(name="Globex Corporation")
    context, page, problems = _watched(browser, viewport)
    base = live_server.url
    _login(page, base, "bill")
    if viewport == "1440":
        assert not page.evaluate("document.getElementById('main').classList.contains('shifted')")  # sidebar closed

    page.goto(f"{base}/admin/subscriptions/subscription/add/")
    page.click("#id_customer + .select2 .select2-selection")
    page.fill(".select2-search__field", "Globex")
    page.click(".select2-results__option:has-text('Globex Corporation')")
    page.select_option("#id_license_type", "ultimate")
    page.fill("#id_seats", "50")
    page.click("#add_on_purchases-group .add-row a")
    page.select_option("#id_add_on_purchases-0-add_on", "duo_pro")
    page.fill("#id_add_on_purchases-0-quantity", "10")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    subscription = Subscription.objects.get()

    page.click("#renew-link")
    page.wait_for_selector("#renew-form")
    page.click("#renew-form input[type=submit]")
    page.wait_for_selector(".messagelist .success")
    renewed = one_year_after(one_year_after(today()))
    assert Subscription.objects.get().expires_on == renewed

    page.goto(f"{base}/admin/subscriptions/subscription/")
    if viewport == "1440":
        _fits(page)
    page.check(f"input[name=_selected_action][value='{subscription.pk}']")
    page.select_option("select[name=action]", "suspend")
    page.click("button[name=index]")
    page.wait_for_selector("textarea[name=reason]")
    assert not Subscription.objects.get().suspended  # the list's post only asked
    shot(page, f"70-suspend-confirm-{viewport}")
    page.fill("textarea[name=reason]", "invoice 2026-114 unpaid")
    page.click("input[type=submit][value^='Confirm']")
    page.wait_for_selector(".messagelist .success")
    assert Subscription.objects.get().suspended
    assert AuditEvent.objects.get(action="subscription.suspend").reason == "invoice 2026-114 unpaid"
    shot(page, f"71-suspended-{viewport}")
    context.close()
    assert not problems, problems


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_a_support_admin_finds_a_customer_an_instance_and_who_changed_it(
    browser, live_server, shot, activated, viewport
):
    from subscriptions import services

    instance, _ = activated
    customer = instance.subscription.customer
    _user("bill", "billing")
    _user("sue", "support")
    bill = User.objects.get(username="bill")
    with acting(actor=Actor("user", bill.username, bill.pk)):
        services.instance_set_suspended(instance, True, reason="abuse report 77")

    context, page, problems = _watched(browser, viewport)
    base = live_server.url
    _login(page, base, "sue")
    page.click(".issuer-nav a:has-text('Customers')")
    page.fill("#searchbar", customer.name.split()[0].lower())
    page.keyboard.press("Enter")
    page.click(f"#result_list a:has-text('{customer.name}')")
    page.wait_for_selector("#customer-hub")
    if viewport == "1440":
        _fits(page)
    shot(page, f"72-customer-hub-{viewport}")
    page.click(f"tr[data-instance='{instance.instance_identifier}'] a[href*='/instance/']")
    page.wait_for_selector(".field-hostname")
    page.go_back()
    page.click("a:has-text('All of this customer')")
    page.wait_for_selector("#result_list")
    row = page.locator("#result_list tr:has(td.field-action:text-is('instance.suspend'))")
    assert row.count() == 1
    assert "bill" in row.inner_text() and "abuse report 77" in row.inner_text()
    if viewport == "1440":
        _fits(page)
    page.goto(f"{base}/admin/subscriptions/instance/?q={instance.hostname}")
    assert page.locator("#result_list .short-id").first.get_attribute("title") == str(instance.instance_identifier)
    if viewport == "1440":
        _fits(page)
    shot(page, f"73-instance-found-{viewport}")
    context.close()
    assert not problems, problems
