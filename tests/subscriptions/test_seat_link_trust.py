"""Issue 22 (low): what a seat link says is the instance's word. Overage is judged against our purchases, a report
from the future is refused, the newest report is the one received last, an add-on we do not sell is refused; and
the clone check compares UUID values on every door."""

import datetime as dt
import json
import uuid

import pytest
import time_machine
from django.utils import timezone

from subscriptions.models import InstanceIdSighting, SeatReport
from subscriptions.selectors import seat_reports_latest, seat_reports_latest_with_overage
from tests.helpers import sync

pytestmark = pytest.mark.django_db


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def report(activated, **overrides):
    instance, key = activated
    body = {
        "gitlab_version": "17.11.0",
        "timestamp": _iso(timezone.now() - dt.timedelta(hours=1)),
        "license_key": key,
        "max_historical_user_count": 120,
        "billable_users_count": 110,
        "instance_id": str(instance.instance_identifier),
        "add_on_metrics": [{"add_on_type": "duo_enterprise", "purchased_seats": 50, "assigned_seats": 42}],
    }
    body.update(overrides)
    return body


def post(client, body):
    return client.post("/api/v1/seat_links", data=json.dumps(body), content_type="application/json")


def test_overage_is_judged_against_our_purchase_not_the_instances_claim(client, activated):
    """The subscription bought 50 Duo Enterprise seats; the instance claims 100,000 and assigns 60."""
    claimed = [{"add_on_type": "duo_enterprise", "purchased_seats": 100_000, "assigned_seats": 60}]
    assert post(client, report(activated, add_on_metrics=claimed)).status_code == 200
    stored = SeatReport.objects.get()
    assert stored.has_overage
    assert stored.add_on_metrics == claimed, "the report is kept as the instance sent it"
    assert list(seat_reports_latest_with_overage()) == [stored]


def test_seats_within_our_purchase_are_no_overage_whatever_the_instance_claims(client, activated):
    understated = [{"add_on_type": "duo_enterprise", "purchased_seats": 10, "assigned_seats": 50}]
    assert post(client, report(activated, add_on_metrics=understated)).status_code == 200
    assert not SeatReport.objects.get().has_overage


def test_seats_of_an_add_on_never_bought_are_overage(client, activated):
    metrics = [{"add_on_type": "duo_pro", "purchased_seats": 5, "assigned_seats": 1}]
    assert post(client, report(activated, add_on_metrics=metrics)).status_code == 200
    assert SeatReport.objects.get().has_overage


def test_gitlabs_own_name_of_duo_pro_is_known(client, pro_subscription, signing_key):
    from subscriptions.services import instance_activate

    activation = instance_activate(
        activation_code=pro_subscription.activation_code,
        instance_identifier=str(uuid.uuid4()),
        hostname="gitlab.example.test",
        gitlab_version="17.11.0",
    )
    activated = (activation.instance, activation.license_key)
    metrics = [{"add_on_type": "code_suggestions", "purchased_seats": 10, "assigned_seats": 10}]
    assert post(client, report(activated, add_on_metrics=metrics)).status_code == 200
    assert not SeatReport.objects.get().has_overage


@pytest.mark.parametrize("add_on_type", ["duo_platinum", "DUO_ENTERPRISE", "../../etc"])
def test_an_unknown_add_on_type_is_refused(client, activated, add_on_type):
    metrics = [{"add_on_type": add_on_type, "purchased_seats": 1, "assigned_seats": 1}]
    response = post(client, report(activated, add_on_metrics=metrics))
    assert response.status_code == 422
    assert "add_on_type" in response.json()["error"]
    assert not SeatReport.objects.exists()


def test_a_timestamp_more_than_300_s_ahead_is_refused(client, activated):
    ahead = post(client, report(activated, timestamp=_iso(timezone.now() + dt.timedelta(seconds=400))))
    assert ahead.status_code == 422 and "timestamp" in ahead.json()["error"]
    far = post(client, report(activated, timestamp="9999-12-31T23:59:59Z"))
    assert far.status_code == 422
    assert not SeatReport.objects.exists()
    skewed = post(client, report(activated, timestamp=_iso(timezone.now() + dt.timedelta(seconds=200))))
    assert skewed.status_code == 200, "ordinary clock skew is fine"


def test_the_newest_report_is_the_one_received_last(client, activated):
    start = timezone.now()
    over = [{"add_on_type": "duo_enterprise", "purchased_seats": 50, "assigned_seats": 70}]
    within = [{"add_on_type": "duo_enterprise", "purchased_seats": 50, "assigned_seats": 40}]
    with time_machine.travel(start - dt.timedelta(days=1)):
        # dated a little ahead (within the skew), then a report received later but dated earlier
        post(client, report(activated, timestamp=_iso(start - dt.timedelta(days=1) + dt.timedelta(seconds=250))))
    with time_machine.travel(start):
        post(client, report(activated, add_on_metrics=over, timestamp=_iso(start - dt.timedelta(days=2))))
    newest = SeatReport.objects.order_by("-received_at").first()
    assert list(seat_reports_latest()) == [newest]
    assert list(seat_reports_latest_with_overage()) == [newest]
    with time_machine.travel(start + dt.timedelta(days=1)):
        post(client, report(activated, add_on_metrics=within, timestamp=_iso(start - dt.timedelta(days=3))))
    assert not seat_reports_latest_with_overage().exists()


@pytest.mark.parametrize(
    ("claimed", "same"),
    [
        (lambda own: own.upper(), True),
        (lambda own: own.replace("-", ""), True),
        (lambda own: "{" + own + "}", True),
        (lambda own: own, True),
        (lambda own: str(uuid.uuid4()), False),
        (lambda own: "not-a-uuid", False),
        (lambda own: "\u00e9" * 40, False),
        (lambda own: "", False),
    ],
)
def test_instance_ids_are_compared_as_uuids(claimed, same):
    from subscriptions.instance_ids import instance_id_matches

    own = uuid.uuid4()
    assert instance_id_matches(claimed(str(own)), own) is same


def test_the_instances_own_uuid_in_upper_case_is_no_clone_on_any_door(client, activated):
    instance, key = activated
    upper = str(instance.instance_identifier).upper()
    _, body = sync(client, key, **{"X-Gitlab-Instance-Id": upper})
    assert body["data"]["cloudConnectorAccess"]["serviceToken"]["token"]
    rest = client.post(
        "/api/v1/service_access_tokens",
        data="{}",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
        HTTP_X_GITLAB_INSTANCE_ID=upper,
    )
    assert rest.status_code == 200
    assert post(client, report(activated, instance_id=upper)).status_code == 200
    assert not InstanceIdSighting.objects.exists()


@pytest.mark.parametrize("header", ["not-a-uuid", "12345", "{}", "g" * 36])
def test_an_instance_id_that_is_no_uuid_is_a_mismatch_never_an_error(client, activated, header):
    _, key = activated
    response, body = sync(client, key, **{"X-Gitlab-Instance-Id": header})
    assert response.status_code == 200 and "does not match" in body["errors"][0]["message"]
    seat = post(client, report(activated, instance_id=header))
    assert seat.status_code == 422 and "does not match" in seat.json()["error"]
