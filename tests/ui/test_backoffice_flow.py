"""The admin's day, driven in Debian's Chromium: log in, sell Duo Enterprise, watch an instance activate and
sync, cancel the purchase and see the scopes drop, rotate a key by hand."""

import json
import uuid

import pytest
import requests

from issuer.keys.services import signing_key_ensure_active
from issuer.models import SigningKey
from subscriptions.models import Subscription
from tests.helpers import ACTIVATE_MUTATION, ADMIN_PASSWORD, SYNC_QUERY

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def login(page, base):
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", ADMIN_PASSWORD)
    page.keyboard.press("Enter")  # keyboard works: no mouse needed to log in
    page.wait_for_selector("#at-a-glance")


def graphql(base, query, variables):
    response = requests.post(
        f"{base}/graphql",
        data=json.dumps({"query": query, "variables": variables}),
        headers={"Content-Type": "application/json", "X-Gitlab-Host-Name": "gitlab.acme.test"},
        timeout=30,
    )
    return response.json()


def test_subscription_to_scopes_to_key_rotation(page, live_server, admin_user, shot, settings):
    settings.ISSUER_URL = live_server.url
    signing_key_ensure_active()
    base = live_server.url
    login(page, base)
    shot(page, "01-dashboard-empty")

    # a customer, then a subscription with a Duo Enterprise purchase in the inline
    page.goto(f"{base}/admin/subscriptions/customer/add/")
    page.fill("#id_name", "ACME Corp")
    page.fill("#id_contact_email", "it@acme.test")
    page.click("input[name=_save]")
    page.goto(f"{base}/admin/subscriptions/subscription/add/")
    page.click("#id_customer + .select2 .select2-selection")
    page.fill(".select2-search__field", "ACME")
    page.click(".select2-results__option:has-text('ACME Corp')")
    page.select_option("#id_license_type", "ultimate")
    page.fill("#id_seats", "100")
    page.fill("#id_starts_on", "2026-01-01")
    page.fill("#id_expires_on", "2030-01-01")
    page.click("#add_on_purchases-group .add-row a")
    page.select_option("#id_add_on_purchases-0-add_on", "duo_enterprise")
    page.fill("#id_add_on_purchases-0-quantity", "50")
    page.fill("#id_add_on_purchases-0-started_on", "2026-01-01")
    page.fill("#id_add_on_purchases-0-expires_on", "2030-01-01")
    shot(page, "02-subscription-form")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")

    # the activation code is on the page
    code = page.inner_text(".field-activation_code .readonly").strip()
    assert code == Subscription.objects.get().activation_code
    shot(page, "03-subscription-saved-with-code")

    # a GitLab instance activates and syncs
    instance_id = str(uuid.uuid4())
    activated = graphql(
        base,
        ACTIVATE_MUTATION,
        {
            "gitlabVersion": "17.11.0",
            "activationCode": code,
            "automated": True,
            "instanceIdentifier": instance_id,
            "hostname": "gitlab.acme.test",
        },
    )
    license_key = activated["data"]["cloudActivationActivate"]["licenseKey"]
    assert license_key
    synced = graphql(base, SYNC_QUERY, {"licenseKey": license_key, "gitlabVersion": "17.11.0"})
    assert synced["data"]["cloudConnectorAccess"]["serviceToken"]["token"]

    page.goto(f"{base}/admin/")
    assert page.inner_text("[data-metric=instances_synced_24h]") == "1"
    assert page.inner_text("[data-metric=active_subscriptions]") == "1"
    assert page.is_visible(f"tr[data-instance='{instance_id}']")
    shot(page, "04-dashboard-with-instance")

    page.click(f"tr[data-instance='{instance_id}'] a")
    page.wait_for_selector("#scope-summary")
    assert page.get_attribute(".chips li[data-scope=troubleshoot_job]", "data-granted") == "yes"
    assert page.get_attribute(".chips li[data-scope=code_suggestions]", "data-granted") == "yes"
    shot(page, "05-instance-scopes")
    assert license_key not in page.content()

    # cancel the purchase: the scopes drop
    page.goto(f"{base}/admin/subscriptions/addonpurchase/")
    page.check("input[name=_selected_action]")
    page.select_option("select[name=action]", "cancel")
    page.click("button[name=index]")
    page.fill("textarea[name=reason]", "the customer dropped the add-on")  # asked first (issue 27)
    page.click("input[type=submit][value^='Confirm']")
    page.wait_for_selector(".messagelist .success")
    page.goto(f"{base}/admin/")
    page.click(f"tr[data-instance='{instance_id}'] a")
    assert page.get_attribute(".chips li[data-scope=troubleshoot_job]", "data-granted") == "no"
    assert page.get_attribute(".chips li[data-scope=code_suggestions]", "data-granted") == "no"
    assert page.get_attribute(".chips li[data-scope=observability_all]", "data-granted") == "yes"
    assert "scopes differ" in page.inner_text("#scope-summary")
    shot(page, "06-instance-scopes-after-cancel")

    # create a key, try to activate it early (refused with the reason), force it, see the timeline change
    old_kid = SigningKey.objects.get(state="active").kid
    page.goto(f"{base}/admin/keys/")
    page.click("input[value='Create a pending key']")
    page.wait_for_selector(".messagelist .success")
    new_kid = SigningKey.objects.get(state="pending").kid
    assert page.inner_text(f"tr[data-kid='{new_kid}'] .state-pending") == "pending"
    shot(page, "07-keys-pending")
    page.click(f"tr[data-kid='{new_kid}'] a:has-text('Activate')")
    assert "The policy would refuse this now" in page.inner_text("[role=alert]")
    page.click("input[type=submit]")  # without force: refused again, nothing changes
    assert "Tick “Force”" in page.inner_text(".messagelist")
    assert SigningKey.objects.get(kid=new_kid).state == "pending"
    page.check("#id_force")
    page.click("input[type=submit]")  # forced without a reason: the form asks why
    assert "Say why" in page.inner_text("[role=alert] >> nth=-1")
    page.check("#id_force")
    page.fill("#id_reason", "rotation drill")
    shot(page, "08-key-force-confirm")
    page.click("input[type=submit]")
    page.wait_for_selector(".messagelist .success")
    assert "rotation drill" in page.inner_text("#audit-events + table")
    assert page.inner_text(f"tr[data-kid='{new_kid}'] td:nth-child(2)") == "active"
    assert page.inner_text(f"tr[data-kid='{old_kid}'] td:nth-child(2)") == "retired"
    shot(page, "09-keys-rotated")
    page.goto(f"{base}/admin/")
    lanes = page.evaluate(
        "() => Chart.getChart(document.querySelector('[data-chart-source=key-timeline-data]')).data.labels"
    )
    assert f"{new_kid[:10]}… active" in lanes and f"{old_kid[:10]}… retired" in lanes, lanes


def test_pages_fit_a_phone(browser, live_server, admin_user, shot):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    login(page, live_server.url)
    for path, name in (
        ("/admin/", "10-phone-dashboard"),
        ("/admin/catalog/", "11-phone-catalog"),
        ("/admin/keys/", "12-phone-keys"),
    ):
        page.goto(f"{live_server.url}{path}")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{path} scrolls sideways by {overflow}px"
        shot(page, name)
    context.close()


def test_every_field_has_a_label(page, live_server, admin_user):
    login(page, live_server.url)
    for path in (
        "/admin/inspect-token/",
        "/admin/subscriptions/subscription/add/",
        "/admin/subscriptions/customer/add/",
    ):
        page.goto(f"{live_server.url}{path}")
        unlabelled = page.evaluate("""() => [...document.querySelectorAll('input:not([type=hidden]):not([type=submit]), select, textarea')]
            .filter(el => !el.closest('.empty-form') && !el.closest('.select2-container') && el.offsetParent !== null)
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
            .map(el => el.name || el.id)""")
        assert unlabelled == [], f"{path}: {unlabelled}"


def test_a_cloned_instance_is_diagnosed_on_its_page(page, live_server, admin_user, shot, settings):
    """A GitLab 19.x instance activates, then a copy of it syncs with the same license key: the copy gets no
    token, and the instance page names the foreign id, the last error and the unique instance id."""
    settings.ISSUER_URL = live_server.url
    signing_key_ensure_active()
    from tests.factories import AddOnPurchaseFactory
    from tests.helpers import ACTIVATE_MUTATION_19

    subscription = AddOnPurchaseFactory(add_on="duo_pro", quantity=5).subscription
    instance_id, clone_id = str(uuid.uuid4()), str(uuid.uuid4())
    activation = graphql(
        live_server.url,
        ACTIVATE_MUTATION_19,
        {
            "activationCode": subscription.activation_code,
            "instanceIdentifier": instance_id,
            "uniqueInstanceId": "anon-browser",
            "automated": True,
            "gitlabVersion": "19.1.0-ee",
            "hostname": "gitlab.acme.test",
        },
    )["data"]["cloudActivationActivate"]
    assert activation["newSubscription"] is True
    refused = requests.post(
        f"{live_server.url}/graphql",
        data=json.dumps(
            {"query": SYNC_QUERY, "variables": {"licenseKey": activation["licenseKey"], "gitlabVersion": "19.1.0-ee"}}
        ),
        headers={"Content-Type": "application/json", "X-Gitlab-Instance-Id": clone_id},
        timeout=30,
    ).json()
    assert refused["data"]["cloudConnectorAccess"] is None

    login(page, live_server.url)
    assert page.inner_text("[data-metric=cloned_instances]") == "1"
    from subscriptions.models import Instance

    page.goto(f"{live_server.url}/admin/instances/{Instance.objects.get().pk}/overview/")
    assert page.inner_text("[data-field=unique_instance_id]") == "anon-browser"
    assert clone_id in page.inner_text("#instance-ids-seen")
    assert "does not match" in page.inner_text("[data-field=last_error]")
    assert page.get_attribute("tr[data-check='one instance id per license key']", "data-ok") == "no"
    shot(page, "20-instance-cloned")


def test_the_landing_page_leads_to_the_back_office_and_the_keys(page, live_server, shot):
    page.goto(f"{live_server.url}/")
    assert page.inner_text("h1") == "Cloud Connector token issuer"
    shot(page, "00-landing")
    page.click("text=JSON Web Key Set")
    assert '"keys"' in page.content()
    page.goto(f"{live_server.url}/")
    page.click("text=Back office")
    assert "/admin/login/" in page.url


def test_api_docs_render_for_staff_with_no_network(page, live_server, admin_user, shot):
    """Swagger UI comes from our own static files: with every request off this server refused, the operations
    still render."""
    refused = []

    def local_only(route):
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.route("**/*", local_only)
    login(page, live_server.url)
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".opblock-summary-path", timeout=20_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/api/v1/service_access_tokens" in path for path in paths)
    assert refused == []
    shot(page, "30-api-docs-offline")


def test_no_page_breaks_the_content_security_policy(page, live_server, admin_user, settings):
    """Chromium reports every blocked inline script or style, or foreign load, on the console: none on the pages
    that use the most (autocomplete, charts, the key timeline, Swagger UI)."""
    settings.ISSUER_URL = live_server.url
    signing_key_ensure_active()
    from tests.factories import AddOnPurchaseFactory

    subscription = AddOnPurchaseFactory(add_on="duo_pro", quantity=3).subscription
    violations = []
    page.on(
        "console",
        lambda message: (
            violations.append(f"{page.url}: {message.text[:60]}") if "Content Security Policy" in message.text else None
        ),
    )
    login(page, live_server.url)
    for path in (
        "/",
        "/admin/",
        "/admin/subscriptions/subscription/add/",
        f"/admin/subscriptions/subscription/{subscription.pk}/change/",
        "/admin/keys/",
        "/admin/catalog/",
        "/api/docs/",
    ):
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
    page.goto(f"{live_server.url}/admin/subscriptions/subscription/add/")
    page.click("#id_customer + .select2 .select2-selection")  # the autocomplete's own script and styles
    assert violations == []
    assert page.locator(".select2-search__field").count() == 1
