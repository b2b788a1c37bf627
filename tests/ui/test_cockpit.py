"""The operators' cockpit in Chromium, at 1280 px and at 390 px: the dashboard's charts and key timeline, the keys
page with its validators, and an instance page; no sideways scroll, no console error, accessible chart titles."""

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from issuer.fleet.services import fleet_rollup_run
from issuer.keys.services import signing_key_create, signing_key_ensure_active, validator_fetch_record
from subscriptions.models import Instance
from subscriptions.services import AddOnMetric, instance_activate, seat_report_record
from tests.factories import AddOnPurchaseFactory
from tests.helpers import ADMIN_PASSWORD, mint_token

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
VIEWPORTS = {"desktop": (1280, 900), "phone": (390, 844)}


@pytest.fixture
def cockpit(admin_user):
    """A small fleet with a week of rollups, a retired, an active and a pending key, and two validators."""
    now = timezone.now()
    old = signing_key_ensure_active(at=now - dt.timedelta(days=100))
    newer = signing_key_create(at=now - dt.timedelta(days=12))
    from issuer.keys.services import signing_key_activate

    signing_key_activate(newer.kid, at=now - dt.timedelta(days=10))
    pending = signing_key_create(at=now - dt.timedelta(hours=20))
    validator_fetch_record(
        user_agent="ai-gateway/1.2", address="10.0.0.5", kids=[old.kid, newer.kid, pending.kid], at=now
    )
    validator_fetch_record(user_agent="duo-workflow/0.9", address="10.0.0.6", kids=[old.kid, newer.kid], at=now)
    for n in range(4):
        subscription = AddOnPurchaseFactory(quantity=10).subscription
        activation = instance_activate(
            activation_code=subscription.activation_code,
            instance_identifier=str(uuid.uuid4()),
            hostname=f"gitlab-{n}.example.test",
            gitlab_version=["18.8.0", "19.0.2", "19.1.0-ee", "19.0.1"][n],
        )
        seat_report_record(
            instance=activation.instance,
            reported_at=now,
            gitlab_version="19.0.2",
            billable_users=30,
            max_historical_users=30,
            add_on_metrics=[AddOnMetric("duo_enterprise", 10, 6 + 2 * n)],
        )
    Instance.objects.update(last_sync_at=now)
    for days in range(7, -1, -1):
        for instance in Instance.objects.all()[: 1 + days % 4]:
            mint_token(instance, at=now - dt.timedelta(days=days))
        fleet_rollup_run(at=now - dt.timedelta(days=days))
    return Instance.objects.order_by("pk").first()


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_the_cockpit_fits_and_shows_its_pictures(browser, live_server, shot, cockpit, viewport):
    width, height = VIEWPORTS[viewport]
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", ADMIN_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_selector("#at-a-glance")

    for path, name in (
        ("/admin/", "dashboard"),
        ("/admin/keys/", "keys"),
        (f"/admin/instances/{cockpit.pk}/overview/", "instance"),
    ):
        page.goto(f"{live_server.url}{path}")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        wide = page.evaluate(
            "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)"
            ".slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + getComputedStyle(e).width + ' '"
            " + getComputedStyle(e).display + ' ' + getComputedStyle(e).flexWrap + ' ' + getComputedStyle(e.parentElement).display"
            " + ' ' + getComputedStyle(e.parentElement).flexDirection)"
        )
        shot(page, f"50-cockpit-{name}-{viewport}")
        assert overflow <= 1, f"{path} at {width} px scrolls sideways by {overflow}px: {wide}"
        if name == "dashboard":
            titles = page.locator("svg.issuer-chart > title").evaluate_all("ts => ts.map(t => t.textContent)")
            assert len(titles) == 6, titles  # five charts and the key timeline
            assert any(title.startswith("Tokens issued per day") for title in titles)
            assert page.locator("[data-chart=tokens-per-day] rect").count() == 30
            labelled = page.locator("svg.issuer-chart").evaluate_all(
                "svgs => svgs.every(svg => svg.getAttribute('role') === 'img' && svg.getAttribute('aria-labelledby'))"
            )
            assert labelled
            assert "by the rollup job" in page.inner_text("#rollup-freshness")
        if name in ("dashboard", "keys"):
            assert page.locator(".key-timeline [data-now]").count() == 1
            assert page.locator(".key-timeline g.lane").count() == 3
            for lane in page.locator(".key-timeline g.lane").all():
                assert lane.locator("rect").count() >= 1, lane.get_attribute("data-kid")
        if name == "keys":
            assert page.locator(".key-timeline .marker.lacks-key").count() == 1
            assert page.locator(".key-timeline .marker.has-key").count() == 1
            assert page.locator("table.validators tbody tr").count() == 2
        if name == "instance":
            assert "scopes match" in page.inner_text("#scope-summary") or "differ" in page.inner_text("#scope-summary")
            assert page.locator(".chips li").count() > 0
    page.goto(f"{live_server.url}/admin/")
    page.evaluate("localStorage.setItem('theme', 'dark')")  # what Django admin's theme toggle stores
    page.reload()
    assert page.get_attribute("html", "data-theme") == "dark"
    background = page.evaluate("getComputedStyle(document.querySelector('.issuer-chart-card')).backgroundColor")
    assert background not in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)"), background
    shot(page, f"50-cockpit-dashboard-dark-{viewport}")
    favicon = page.request.get(f"{live_server.url}/favicon.ico")
    assert favicon.ok and "svg" in favicon.headers["content-type"]
    assert not errors, errors
    context.close()
