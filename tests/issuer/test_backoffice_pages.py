"""The back office's small things: one date format everywhere, one breadcrumb root, dashboard cards that say "1
instance" and link to their filtered lists."""

import datetime as dt
import re
import uuid

import pytest
from django.utils import timezone

from issuer.keys.services import signing_key_ensure_active
from subscriptions.models import Instance
from subscriptions.services import instance_activate
from tests.factories import AddOnPurchaseFactory
from tests.helpers import last_sync_set

pytestmark = pytest.mark.django_db
WHEN = dt.datetime(2026, 12, 5, 7, 32, tzinfo=dt.UTC)


def _breadcrumb_root(page: str) -> str:
    crumbs = re.search(r'<div class="breadcrumbs">\s*<a href="/admin/">([^<]+)</a>', page)
    assert crumbs, "the page has breadcrumbs starting at the back office's root"
    return crumbs.group(1)


def test_every_back_office_page_starts_its_breadcrumbs_at_dashboard(admin_client):
    signing_key_ensure_active()
    subscription = AddOnPurchaseFactory().subscription
    pages = [
        "/admin/subscriptions/",
        "/admin/subscriptions/subscription/",
        f"/admin/subscriptions/subscription/{subscription.pk}/change/",
        f"/admin/subscriptions/subscription/{subscription.pk}/history/",
        "/admin/subscriptions/customer/add/",
        f"/admin/subscriptions/customer/{subscription.customer.pk}/delete/",
        "/admin/auth/user/",
        "/admin/password_change/",
        "/admin/keys/",
        "/admin/catalog/",
        "/admin/inspect-token/",
        "/admin/audit/auditevent/",
    ]
    for path in pages:
        response = admin_client.get(path)
        assert response.status_code == 200, path
        assert _breadcrumb_root(response.content.decode()) == "Dashboard", path


def test_dates_read_as_iso_day_24_hour_time_and_utc_on_our_pages_and_django_admins(admin_client):
    key = signing_key_ensure_active(at=WHEN)
    keys_page = admin_client.get("/admin/keys/").content.decode()
    assert "2026-12-05 07:32 UTC" in keys_page
    signing_key_list = admin_client.get("/admin/issuer/signingkey/").content.decode()
    assert "2026-12-05 07:32 UTC" in signing_key_list, "Django admin's change list uses the same format"
    assert "Dec. 5, 2026" not in signing_key_list and "a.m." not in signing_key_list
    assert key.created_at == WHEN and timezone.get_current_timezone_name() == "UTC"


def test_dashboard_cards_say_one_in_the_singular_and_link_to_their_filtered_lists(admin_client):
    signing_key_ensure_active()
    now = timezone.now()
    instances = []
    for _ in range(2):
        subscription = AddOnPurchaseFactory().subscription
        activation = instance_activate(
            activation_code=subscription.activation_code, instance_identifier=str(uuid.uuid4())
        )
        instances.append(activation.instance)
    Instance.objects.filter(pk__in=[instance.pk for instance in instances]).update(
        activated_at=now - dt.timedelta(days=10)
    )
    last_sync_set(instances[:1], now)
    page = admin_client.get("/admin/").content.decode()
    cards = re.findall(
        r'<li><a href="([^"]+)"><span class="value" data-metric="(\w+)">(\d+)</span> ([^<]+)</a></li>', page
    )
    text = {metric: f"{value} {words}" for _, metric, value, words in cards}
    assert text["stale_instances"].startswith("1 stale instance (") and text["customers"] == "2 customers"
    assert text["instances_synced_24h"] == "1 instance synced in 24 h"
    links = {metric: href.replace("&amp;", "&") for href, metric, _, _ in cards}
    listed = {
        "instances_synced_24h": instances[0].instance_identifier,
        "stale_instances": instances[1].instance_identifier,
    }
    for metric, identifier in listed.items():
        response = admin_client.get(links[metric])
        assert response.status_code == 200, links[metric]
        other = next(i.instance_identifier for i in instances if i.instance_identifier != identifier)
        body = response.content.decode()
        assert str(identifier) in body and str(other) not in body, metric
    for metric in ("customers", "active_subscriptions", "tokens_issued_24h", "cloned_instances"):
        assert admin_client.get(links[metric]).status_code == 200, links[metric]
