"""Issue 27: CSV export of every list with its current filters: streamed, roles respected (no activation code
below support, never a digest or ciphertext), formula-looking cells neutralised, the lookup allow-list kept."""

import csv
import io

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.http import StreamingHttpResponse
from django.test import Client

from config.admin_export import CsvExportAdmin, csv_cell, refused_paths
from subscriptions import services
from subscriptions.models import Instance
from tests.factories import SubscriptionFactory
from tests.helpers import mint_token, postgres_only, role

pytestmark = pytest.mark.django_db

EXPORTS = {
    "subscriptions": "/admin/subscriptions/subscription/export.csv",
    "instances": "/admin/subscriptions/instance/export.csv",
    "add-on purchases": "/admin/subscriptions/addonpurchase/export.csv",
    "seat reports": "/admin/subscriptions/seatreport/export.csv",
    "tokens": "/admin/issuer/issuedtoken/export.csv",
    "audit events": "/admin/audit/auditevent/export.csv",
    "customers": "/admin/subscriptions/customer/export.csv",
}


def _client(role_name: str) -> Client:
    user = User.objects.create_user(role_name.replace(" ", "-"), password="pw-12345-x", is_staff=True)
    user.groups.add(role(role_name))
    client = Client()
    client.force_login(user)
    return client


def _rows(response) -> list[dict]:
    assert response.status_code == 200, response.status_code
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/csv") and "attachment" in response["Content-Disposition"]
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_a_spreadsheet_formula_in_a_cell_is_neutralised():
    for hostile in ('=HYPERLINK("http://evil")', "+1+2", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert csv_cell(hostile) == f"'{hostile}"
    assert csv_cell("gitlab.example.test") == "gitlab.example.test"
    assert (csv_cell(-3), csv_cell(None), csv_cell(True), csv_cell(False)) == (-3, "", "yes", "no")


def test_every_list_exports_and_no_export_names_a_secret(activated):
    instance, _ = activated
    mint_token(instance)
    services.instance_set_suspended(instance, True, reason="abuse")
    exporters = [
        model_admin for model_admin in admin.site._registry.values() if isinstance(model_admin, CsvExportAdmin)
    ]
    assert {type(model_admin).__name__ for model_admin in exporters} >= {
        "SubscriptionAdmin",
        "InstanceAdmin",
        "AddOnPurchaseAdmin",
        "SeatReportAdmin",
        "IssuedTokenAdmin",
        "AuditEventAdmin",
    }
    for model_admin in exporters:
        assert not refused_paths(model_admin.csv_columns), type(model_admin).__name__
    client = _client("support")
    digest = Instance.objects.get(pk=instance.pk).license_key_digest
    for name, url in EXPORTS.items():
        response = client.get(url)
        body = b"".join(response.streaming_content).decode()
        assert response.status_code == 200, name
        assert digest not in body and "token_encrypted" not in body, name


def test_an_export_keeps_the_lists_filters_and_search(activated):
    instance, _ = activated
    suspended = SubscriptionFactory()
    services.subscription_set_suspended(suspended, True, reason="unpaid")
    client = _client("viewer")
    rows = _rows(client.get(EXPORTS["subscriptions"], {"status": "suspended"}))
    assert [int(row["id"]) for row in rows] == [suspended.pk] and rows[0]["status"] == "suspended"
    found = _rows(client.get(EXPORTS["instances"], {"q": instance.hostname}))
    assert [row["instance id"] for row in found] == [str(instance.instance_identifier)]
    assert _rows(client.get(EXPORTS["instances"], {"q": "no-such-host"})) == []
    by_customer = _rows(client.get(EXPORTS["audit events"], {"customer_id": suspended.customer_id}))
    assert [row["action"] for row in by_customer] == ["subscription.suspend"]


def test_an_export_refuses_the_lookups_its_list_refuses(activated):
    client = _client("viewer")
    code = activated[0].subscription.activation_code
    assert client.get(EXPORTS["subscriptions"], {"activation_code__startswith": code[:1]}).status_code == 400
    assert client.get(EXPORTS["instances"], {"hostname__startswith": "g"}).status_code == 400


def test_activation_codes_are_exported_only_to_roles_that_see_them(activated):
    code = activated[0].subscription.activation_code
    viewer_rows = _rows(_client("viewer").get(EXPORTS["subscriptions"]))
    assert "activation code" not in viewer_rows[0] and code not in str(viewer_rows)
    support_rows = _rows(_client("support").get(EXPORTS["subscriptions"]))
    assert support_rows[0]["activation code"] == code


def test_hostile_instance_values_reach_the_export_neutralised(activated):
    instance, _ = activated
    Instance.objects.filter(pk=instance.pk).update(hostname="=cmd|' /C calc'!A0", gitlab_version="+17.0")
    rows = _rows(_client("viewer").get(EXPORTS["instances"]))
    assert rows[0]["host name"] == "'=cmd|' /C calc'!A0" and rows[0]["gitlab version"] == "'+17.0"


def test_a_role_without_the_list_gets_no_export():
    client = Client()
    client.force_login(User.objects.create_user("nobody", password="pw-12345-x", is_staff=True))
    assert client.get(EXPORTS["subscriptions"]).status_code == 403


def test_the_list_links_its_export_with_the_current_filters():
    page = _client("viewer").get("/admin/subscriptions/subscription/", {"status": "active", "q": "acme"})
    assert 'href="/admin/subscriptions/subscription/export.csv?q=acme&amp;status=active"' in page.content.decode()


def test_gunicorn_lets_a_long_export_finish(monkeypatch):
    """A sync worker sends no heartbeat while it streams: the timeout is WEB_TIMEOUT (300 s by default), not
    gunicorn's 30 s, which would cut a large export mid-file."""
    import runpy
    from pathlib import Path

    conf = Path(__file__).resolve().parents[2] / "config" / "gunicorn.conf.py"
    monkeypatch.delenv("WEB_TIMEOUT", raising=False)
    assert runpy.run_path(str(conf))["timeout"] == 300
    monkeypatch.setenv("WEB_TIMEOUT", "900")
    assert runpy.run_path(str(conf))["timeout"] == 900


@postgres_only
@pytest.mark.django_db(transaction=True)  # autocommit, as a request runs: where Django would hold the cursor
def test_the_export_streams_from_a_cursor_postgresql_does_not_materialise(activated, monkeypatch):
    """Outside a transaction Django declares its cursor WITH HOLD, and PostgreSQL computes the whole result before
    the first row: the export reads inside one, so its cursor is not holdable and rows come as fetched."""
    from django.db import connection

    monkeypatch.setattr("config.admin_export.EXPORT_LINES_PER_PIECE", 1)  # a piece a row: the cursor stays open
    SubscriptionFactory.create_batch(3)
    response = _client("viewer").get(EXPORTS["subscriptions"])
    lines = iter(response.streaming_content)
    next(lines)
    next(lines)  # the first row: the cursor is open
    with connection.cursor() as cursor:
        cursor.execute("SELECT is_holdable FROM pg_cursors WHERE name LIKE '_django_curs_%%'")
        assert [holdable for (holdable,) in cursor.fetchall()] == [False]
    assert len(list(lines)) == 3
    response.close()
