"""The operators' cockpit in Chromium, at 1440 px and at 390 px: the dashboard's charts and key timeline, the keys
page with its validators, and an instance page, drawn by Chart.js; labels at least 12 px, a single point drawn, no
sideways scroll, no console error, no Content-Security-Policy violation, a table behind every chart."""

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from issuer.fleet.services import fleet_rollup_run
from issuer.keys.services import signing_key_create, signing_key_ensure_active, validator_fetch_record
from subscriptions.models import Instance
from subscriptions.services import AddOnMetric, instance_activate, seat_report_record
from tests.factories import AddOnPurchaseFactory
from tests.helpers import ADMIN_PASSWORD, last_sync_set, mint_token
from tests.ui.conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
VIEWPORTS = {"desktop": (1440, 900), "phone": (390, 844)}

# What Chart.js drew on each canvas: its kind, the smallest tick label font (as drawn), the number of points, and
# whether the first non-zero point of the first dataset put paint on the canvas (null: every value is zero).
CHARTS_DRAWN = """() => [...document.querySelectorAll('canvas[data-chart-source]')].map(canvas => {
  const chart = Chart.getChart(canvas);
  if (!chart) return {source: canvas.dataset.chartSource, drawn: false};
  const sizes = Object.values(chart.scales).flatMap(scale => scale.getLabelItems().map(item => item.font.size));
  const meta = chart.getDatasetMeta(0);
  const values = chart.data.datasets[0].data;
  const point = meta.data[values.findIndex(value => typeof value !== 'number' || value > 0)];
  let painted = point ? false : null;
  if (point) {
    const ratio = chart.currentDevicePixelRatio;
    const box = point.getProps(['x', 'y', 'base', 'width', 'height'], true);
    const x = chart.options.indexAxis === 'y' ? (box.x + box.base) / 2 : box.x;
    const y = chart.options.indexAxis === 'y' ? box.y : (box.base !== undefined && meta.type === 'bar' ? (box.y + box.base) / 2 : box.y);
    const pixel = canvas.getContext('2d').getImageData(Math.round(x * ratio), Math.round(y * ratio), 1, 1).data;
    painted = pixel[3] > 0;
  }
  return {source: canvas.dataset.chartSource, drawn: true, kind: meta.type, minFont: Math.min(...sizes),
          points: meta.data.length, painted, width: canvas.getBoundingClientRect().width,
          tickColor: chart.options.scales.x.ticks.color};
})"""


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
    last_sync_set(Instance.objects.all(), now)
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
    page.add_init_script(
        "window.cspViolations = []; document.addEventListener('securitypolicyviolation', "
        "e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
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
        page.wait_for_function(
            "() => [...document.querySelectorAll('canvas[data-chart-source]')].every(c => Chart.getChart(c))"
        )
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        wide = page.evaluate(
            "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)"
            ".slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + getComputedStyle(e).width)"
        )
        shot(page, f"50-cockpit-{name}-{viewport}")
        for figure in page.locator("figure.issuer-chart-card").all():  # close-ups, to read the labels
            figure.screenshot(
                path=str(ARTIFACTS / f"51-chart-{name}-{figure.get_attribute('data-chart')}-{viewport}.png")
            )
        assert overflow <= 1, f"{path} at {width} px scrolls sideways by {overflow}px: {wide}"
        drawn = page.evaluate(CHARTS_DRAWN)
        expected = {"dashboard": 6, "keys": 1, "instance": 1}[name]  # five charts and the key timeline on the dashboard
        assert len(drawn) == expected and all(chart["drawn"] for chart in drawn), drawn
        for chart in drawn:
            assert chart["minFont"] >= 12, f"{chart['source']}: labels drawn at {chart['minFont']} px"
            assert chart["painted"] is not False, f"{chart['source']}: its first point put nothing on the canvas"
            assert 0 < chart["width"] <= width
        tables = page.locator("figure.issuer-chart-card details table").count()
        assert tables == {"dashboard": 5, "keys": 0, "instance": 1}[name], "a table behind each chart"
        if name in ("dashboard", "keys"):  # the timeline's table: every key with its times
            assert page.locator("tr[data-kid]").count() == 3
        assert page.evaluate("window.cspViolations") == [], f"{path}: Content-Security-Policy violations"
        labelled = page.locator("canvas[data-chart-source]").evaluate_all(
            "cs => cs.every(c => c.getAttribute('role') === 'img' && c.getAttribute('aria-labelledby') && "
            "document.getElementById(c.getAttribute('aria-describedby')).textContent.length > 20)"
        )
        assert labelled
        if name == "dashboard":
            assert page.locator("[data-chart=tokens-per-day] details tbody tr").count() == 30
            assert "by the rollup job" in page.inner_text("#rollup-freshness")
            assert page.locator(".issuer-cards a[href*='state=stale']").count() == 1
            canvas = page.locator("[data-chart=tokens-per-day] canvas")
            canvas.scroll_into_view_if_needed()
            box = canvas.bounding_box()
            page.mouse.move(box["x"] + box["width"] - 20, box["y"] + box["height"] / 2)
            page.wait_for_function(
                "() => Chart.getChart(document.querySelector('[data-chart=tokens-per-day] canvas')).tooltip.opacity > 0"
            )
            shot(page, f"50-cockpit-dashboard-tooltip-{viewport}")
        if name == "keys":
            timeline = page.evaluate(
                "() => Chart.getChart(document.querySelector('[data-chart-source=key-timeline-data]')).data.datasets"
                ".map(d => [d.label, d.data.length])"
            )
            assert ["validator lacks it", 1] in timeline and ["validator has the key", 1] in timeline, timeline
            assert page.locator("table.validators tbody tr").count() == 2
        if name == "instance":
            only = [chart for chart in drawn if chart["source"] == "instance-seats-data"]
            assert only and only[0]["points"] == 1 and only[0]["painted"], "a single seat report draws its point"
            assert "scopes match" in page.inner_text("#scope-summary") or "differ" in page.inner_text("#scope-summary")
            assert page.locator(".chips li").count() > 0
    light_ticks = page.evaluate(CHARTS_DRAWN)[0]["tickColor"]
    page.goto(f"{live_server.url}/admin/")
    page.evaluate("localStorage.setItem('theme', 'dark')")  # what Django admin's theme toggle stores
    page.reload()
    assert page.get_attribute("html", "data-theme") == "dark"
    background = page.evaluate("getComputedStyle(document.querySelector('.issuer-chart-card')).backgroundColor")
    assert background not in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)"), background
    page.wait_for_function(
        "() => [...document.querySelectorAll('canvas[data-chart-source]')].every(c => Chart.getChart(c))"
    )
    dark_ticks = page.evaluate(CHARTS_DRAWN)[0]["tickColor"]
    assert dark_ticks != light_ticks, "the charts' labels follow the dark theme"
    shot(page, f"50-cockpit-dashboard-dark-{viewport}")
    favicon = page.request.get(f"{live_server.url}/favicon.ico")
    assert favicon.ok and "svg" in favicon.headers["content-type"]
    assert not errors, errors
    assert page.evaluate("window.cspViolations") == [], "no Content-Security-Policy violation"
    context.close()
