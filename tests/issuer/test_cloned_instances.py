"""One license key used from more than one instance id (a cloned instance): refused on every door, noted, shown."""

import datetime as dt
import json
import uuid

import pytest
import time_machine
from django.utils import timezone

from subscriptions.models import InstanceIdSighting
from subscriptions.selectors import instance_ids_seen, instances_cloned_count
from subscriptions.services import SIGHTINGS_PER_INSTANCE, instance_foreign_id_record
from tests.helpers import GITLAB_19_HEADERS, sync

pytestmark = pytest.mark.django_db


def test_graphql_sync_with_a_contradicting_instance_id_gets_no_token_and_says_why(client, activated):
    instance, key = activated
    clone_id = str(uuid.uuid4())
    response, body = sync(client, key, "19.1.0-ee", **GITLAB_19_HEADERS, **{"X-Gitlab-Instance-Id": clone_id})
    assert response.status_code == 200
    assert body["data"]["cloudConnectorAccess"] is None
    assert "X-Gitlab-Instance-Id does not match" in body["errors"][0]["message"]
    assert "copy of another" in body["errors"][0]["message"]
    assert list(InstanceIdSighting.objects.values_list("seen_instance_id", flat=True)) == [clone_id]
    instance.refresh_from_db()
    assert "does not match" in instance.last_error and instance.last_error_at is not None


def test_the_bound_id_and_no_header_both_still_get_a_token(client, activated):
    instance, key = activated
    _, own = sync(client, key, **{"X-Gitlab-Instance-Id": str(instance.instance_identifier)})
    _, bare = sync(client, key)
    assert own["data"]["cloudConnectorAccess"]["serviceToken"]["token"]
    assert bare["data"]["cloudConnectorAccess"]["serviceToken"]["token"]
    assert not InstanceIdSighting.objects.exists()


def test_rest_and_seat_link_note_the_clone_too(client, activated):
    instance, key = activated
    clone_id = str(uuid.uuid4())
    rest = client.post(
        "/api/v1/service_access_tokens",
        data="{}",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
        HTTP_X_GITLAB_INSTANCE_ID=clone_id,
    )
    assert rest.status_code == 403 and "does not match" in rest.json()["detail"]
    other_clone = str(uuid.uuid4())
    seat = client.post(
        "/api/v1/seat_links",
        data=json.dumps(
            {
                "timestamp": "2026-11-01T00:00:00Z",
                "license_key": key,
                "max_historical_user_count": 1,
                "billable_users_count": 1,
                "instance_id": other_clone,
            }
        ),
        content_type="application/json",
    )
    assert seat.status_code == 422 and "does not match" in seat.json()["error"]
    assert set(InstanceIdSighting.objects.values_list("seen_instance_id", flat=True)) == {clone_id, other_clone}


def test_instance_ids_seen_lists_own_and_foreign_ids_of_the_last_seven_days(client, activated):
    instance, key = activated
    own_id = str(instance.instance_identifier)
    start = timezone.now()
    with time_machine.travel(start - dt.timedelta(days=8)):
        sync(client, key, **{"X-Gitlab-Instance-Id": "old-clone"})
    with time_machine.travel(start):
        sync(client, key, **{"X-Gitlab-Instance-Id": own_id})
        sync(client, key, **{"X-Gitlab-Instance-Id": "new-clone"})
    instance.refresh_from_db()
    seen = instance_ids_seen(instance, start)
    assert [(row["instance_id"], row["own"]) for row in seen] == [(own_id, True), ("new-clone", False)]
    assert instances_cloned_count(start) == 1
    assert instances_cloned_count(start + dt.timedelta(days=8)) == 0


def test_a_caller_cycling_ids_keeps_a_bounded_number_of_sightings(activated):
    instance, _ = activated
    at = timezone.now()
    for number in range(SIGHTINGS_PER_INSTANCE + 5):
        instance_foreign_id_record(instance, f"clone-{number}", at=at + dt.timedelta(seconds=number))
    kept = set(InstanceIdSighting.objects.filter(instance=instance).values_list("seen_instance_id", flat=True))
    assert len(kept) == SIGHTINGS_PER_INSTANCE
    assert f"clone-{SIGHTINGS_PER_INSTANCE + 4}" in kept and "clone-0" not in kept


def test_repeated_sightings_write_at_most_once_a_minute(activated, django_assert_num_queries):
    instance, _ = activated
    at = timezone.now()
    instance_foreign_id_record(instance, "clone", at=at)
    with django_assert_num_queries(1):  # the read only
        instance_foreign_id_record(instance, "clone", at=at + dt.timedelta(seconds=30))
    instance_foreign_id_record(instance, "clone", at=at + dt.timedelta(minutes=2))
    sighting = InstanceIdSighting.objects.get()
    assert sighting.first_seen_at == at and sighting.last_seen_at == at + dt.timedelta(minutes=2)
