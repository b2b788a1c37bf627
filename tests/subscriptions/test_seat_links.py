import json

import pytest

from subscriptions.models import SeatReport

pytestmark = pytest.mark.django_db


def report(activated, **overrides):
    instance, key = activated
    body = {
        "gitlab_version": "17.11.0",
        "timestamp": "2026-11-20T10:00:00Z",
        "license_key": key,
        "max_historical_user_count": 120,
        "billable_users_count": 110,
        "hostname": "gitlab.example.test",
        "instance_id": str(instance.instance_identifier),
        "unique_instance_id": "uniq-1",
        "add_on_metrics": [{"add_on_type": "duo_enterprise", "purchased_seats": 50, "assigned_seats": 42}],
    }
    body.update(overrides)
    return body


def post(client, body):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post("/api/v1/seat_links", data=data, content_type="application/json")


def test_report_is_stored_and_history_kept(client, activated):
    first = post(client, report(activated))
    assert first.status_code == 200
    assert first["Content-Type"] == "application/json"
    body = first.json()
    assert body["success"] is True and body["next_reconciliation_date"] and body["display_alert_from"]
    post(client, report(activated, billable_users_count=115, timestamp="2026-11-21T10:00:00Z"))
    reports = list(SeatReport.objects.order_by("reported_at"))
    assert [r.billable_users for r in reports] == [110, 115]
    assert reports[0].add_on_metrics == [{"add_on_type": "duo_enterprise", "purchased_seats": 50, "assigned_seats": 42}]
    assert not reports[0].has_overage
    activated[0].refresh_from_db()
    assert activated[0].unique_instance_id == "uniq-1"


@pytest.mark.parametrize(
    "optional", ["add_on_metrics", "hostname", "gitlab_version", "instance_id", "unique_instance_id"]
)
def test_optional_fields_may_be_missing(client, activated, optional):
    body = report(activated)
    del body[optional]
    assert post(client, body).status_code == 200
    assert SeatReport.objects.count() == 1


def test_overage_is_detected(client, activated):
    post(
        client,
        report(
            activated, add_on_metrics=[{"add_on_type": "duo_enterprise", "purchased_seats": 50, "assigned_seats": 51}]
        ),
    )
    assert SeatReport.objects.get().has_overage


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"license_key": "cdl_wrong"}, "license key is not valid"),
        ({"license_key": None}, "license key is not valid"),
        ({"license_key": 12345}, "license key is not valid"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"billable_users_count": -1}, "billable_users_count"),
        ({"max_historical_user_count": "many"}, "max_historical_user_count"),
        ({"add_on_metrics": [{"add_on_type": "duo_pro"}]}, "add_on_metrics"),
        ({"add_on_metrics": "all"}, "add_on_metrics"),
        ({"instance_id": "00000000-0000-0000-0000-000000000000"}, "instance_id does not match"),
    ],
)
def test_bad_bodies_are_422_and_store_nothing(client, activated, change, fragment):
    response = post(client, report(activated, **change))
    assert response.status_code == 422
    body = response.json()
    assert body["success"] is False and fragment in body["error"]
    assert SeatReport.objects.count() == 0


@pytest.mark.parametrize("raw", ["]]", "", "{not json", b"\xff\xfe"])
def test_not_json_is_400(client, activated, raw):
    response = post(client, raw)
    assert response.status_code == 400
    assert response.json()["success"] is False


def test_json_that_is_not_an_object_is_400(client, activated):
    assert post(client, [1, 2]).status_code == 400


def test_only_post(client):
    assert client.get("/api/v1/seat_links").status_code == 405
