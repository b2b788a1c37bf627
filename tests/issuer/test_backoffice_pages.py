"""The back office's small things: one date format everywhere, one breadcrumb root."""

import datetime as dt
import re

import pytest
from django.utils import timezone

from issuer.keys.services import signing_key_ensure_active
from tests.factories import AddOnPurchaseFactory

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
