"""Usage in (issue 24): the Snowplow collector takes the AI gateway's billable_usage events, proven with the real
`snowplow-tracker` package, and stores each event exactly once however often it is delivered."""

import datetime as dt
import threading
import time
import uuid
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.test import override_settings
from django.utils import timezone
from snowplow_tracker import Emitter, SelfDescribingJson, StructuredEvent, Tracker

from credits.models import UsageEvent, UsageEventId
from credits.selectors import daily_usage_mismatches, month_of, month_statement
from subscriptions.services import instance_activate
from tests.credits.helpers import BILLABLE, batch, tracker_event, usage
from tests.factories import SubscriptionFactory
from tests.helpers import postgres_only

TP2 = "/com.snowplowanalytics.snowplow/tp2"


@pytest.fixture
def instance(db):
    subscription = SubscriptionFactory(license_type="premium", seats=10)
    return instance_activate(
        activation_code=subscription.activation_code, instance_identifier=str(uuid.uuid4())
    ).instance


def gateway_tracker(live_server, *, method="post", batch_size=10):
    """The AI gateway's own construction (lib/billing_events/client.py), pointed at this issuer."""
    address = urlsplit(live_server.url)
    emitter = Emitter(address.hostname, protocol="http", port=address.port, method=method, batch_size=batch_size)
    return Tracker(namespace="gl", emitters=[emitter], app_id="gitlab_ai_gateway-billing"), emitter


def track(tracker, data):
    tracker.track(
        StructuredEvent(
            category="CodeCompletions", action=data["event_type"], context=[SelfDescribingJson(BILLABLE, data)]
        )
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.live
def test_the_real_tracker_bills_each_event_once_however_often_it_is_delivered(live_server, instance):
    tracker, emitter = gateway_tracker(live_server)
    events = [usage(instance) for _ in range(25)]
    for data in events:
        track(tracker, data)
    emitter.flush()
    for data in events[:15]:  # a retried batch: the same billing event ids again
        track(tracker, data)
    emitter.flush()
    assert UsageEvent.objects.count() == 25 and UsageEventId.objects.count() == 25
    statement = month_statement(instance.subscription, month_of(timezone.now()))
    assert statement.usage == Decimal("0.5") and statement.pools[0].used == Decimal("0.5")  # 25 × 0.02 of 120


@pytest.mark.django_db(transaction=True)
@pytest.mark.live
def test_the_real_tracker_in_get_mode_reaches_the_pixel(live_server, instance):
    tracker, emitter = gateway_tracker(live_server, method="get", batch_size=1)
    track(tracker, usage(instance, event_type="code_generations"))
    emitter.flush()
    assert UsageEvent.objects.get().event_type == "code_generations"


def post(client, body, **headers):
    return client.post(TP2, body, content_type="application/json", **headers)


def test_refused_events_are_counted_by_reason_and_never_stored(client, instance):
    now = timezone.now()
    good = usage(instance)
    unknown = usage(instance, instance_id=str(uuid.uuid4()))
    future = usage(instance, at=now + dt.timedelta(minutes=10))
    old = usage(instance, at=now - dt.timedelta(days=8))
    negative = usage(instance, quantity=-1)
    text_quantity = usage(instance, quantity="3")
    no_id = {**usage(instance), "event_id": "not-a-uuid"}
    not_billable = {"e": "se", "se_ca": "x", "se_ac": "y"}
    answer = post(
        client,
        batch(
            tracker_event(good),
            tracker_event(good),
            tracker_event(unknown),
            tracker_event(future),
            tracker_event(old),
            tracker_event(negative),
            tracker_event(text_quantity),
            tracker_event(no_id, encode=False),
            not_billable,
            "not an event",
        ),
    )
    assert answer.status_code == 200, answer.content
    assert answer.json() == {
        "stored": 1,
        "duplicates": 1,
        "unpriced": 0,
        "refused": {
            "bad_quantity": 2,
            "future": 1,
            "malformed": 2,
            "not_billable": 1,
            "too_old": 1,
            "unknown_instance": 1,
        },
    }
    assert list(UsageEvent.objects.values_list("event_id", flat=True)) == [uuid.UUID(good["event_id"])]


def test_only_the_configured_networks_may_send(client, instance):
    body = batch(tracker_event(usage(instance)))
    assert post(client, body, REMOTE_ADDR="203.0.113.5").status_code == 403
    with override_settings(ISSUER_COLLECTOR_ALLOWED_NETWORKS=["203.0.113.0/24"]):
        assert post(client, body, REMOTE_ADDR="203.0.113.5").status_code == 200
    assert client.get("/i", {"e": "se"}, REMOTE_ADDR="203.0.113.5").status_code == 403
    assert UsageEvent.objects.count() == 1


def test_bad_batches_get_a_clear_error(client, instance):
    assert client.post(TP2, "x", content_type="text/plain").status_code == 415
    assert post(client, "{not json").status_code == 400
    assert post(client, {"schema": "iglu:other/thing/jsonschema/1-0-0", "data": []}).status_code == 400
    assert post(client, batch(*[tracker_event(usage(instance)) for _ in range(1001)])).status_code == 413
    assert client.get(TP2).status_code == 405
    assert not UsageEvent.objects.exists()


def test_an_event_counts_in_the_utc_month_of_its_own_timestamp(client, instance):
    moment = timezone.now().replace(microsecond=0) - dt.timedelta(hours=1)
    data = usage(instance, at=moment)
    data["timestamp"] = moment.astimezone(dt.timezone(dt.timedelta(hours=-5))).isoformat()  # with an offset
    assert post(client, batch(tracker_event(data))).json()["stored"] == 1
    stored = UsageEvent.objects.get()
    assert stored.occurred_at == moment and stored.month == month_of(moment)


@postgres_only  # on SQLite the live server's threads share one in-memory connection: no concurrency to test
@pytest.mark.django_db(transaction=True)
@pytest.mark.live
def test_four_emitters_replaying_the_same_events_twice_store_each_once(live_server, instance):
    """A smaller twin of bench/credits_bench.py's replay: 4 concurrent emitters, the same 200 events, twice each."""
    import requests

    events = [tracker_event(usage(instance)) for _ in range(200)]
    batches = [batch(*events[start : start + 20]) for start in range(0, 200, 20)]
    errors = []

    def emit():
        with requests.Session() as session:
            for _ in range(2):
                for body in batches:
                    for _attempt in range(50):  # a 503 stored nothing: the emitter sends the batch again
                        answer = session.post(live_server.url + TP2, json=body, timeout=30)
                        if answer.status_code != 503:
                            break
                        time.sleep(0.05)
                    if answer.status_code != 200:
                        errors.append(answer.status_code)

    threads = [threading.Thread(target=emit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and UsageEvent.objects.count() == 200 and UsageEventId.objects.count() == 200
    assert month_statement(instance.subscription, month_of(timezone.now())).usage == Decimal("4")
    assert daily_usage_mismatches(month_of(timezone.now())) == []  # the rollup summed each event once too
