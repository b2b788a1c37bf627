"""The instance diagnosis mirrors GitLab's Duo health check from the issuer's side."""

import datetime as dt
import uuid
from unittest import mock

import pytest
import time_machine
from django.utils import timezone

from issuer.backoffice.selectors import instance_diagnosis
from issuer.fleet.selectors import fleet_summary
from issuer.keys.services import signing_key_create, signing_key_revoke
from issuer.models import IssuedToken
from subscriptions.services import instance_foreign_id_record
from tests.helpers import sync

pytestmark = pytest.mark.django_db


def checks_of(diagnosis):
    return {check.name: check for check in diagnosis.checks}


def test_a_freshly_synced_instance_is_all_clear(client, activated):
    instance, key = activated
    sync(client, key, **{"X-Gitlab-Instance-Id": str(instance.instance_identifier)})
    instance.refresh_from_db()
    diagnosis = instance_diagnosis(instance, timezone.now())
    assert diagnosis.healthy, diagnosis.checks
    assert diagnosis.newest_token_expires_at == IssuedToken.objects.get().expires_at
    assert diagnosis.last_error == ""


def test_access_data_older_than_three_days_is_flagged(client, activated):
    instance, key = activated
    sync(client, key)
    instance.refresh_from_db()
    diagnosis = instance_diagnosis(instance, timezone.now() + dt.timedelta(days=3, hours=1))
    fresh = checks_of(diagnosis)["access data fresh (synced within 3 days)"]
    assert not fresh.ok and "stale" in fresh.detail and not diagnosis.healthy


def test_a_token_signed_by_a_revoked_key_fails_the_gateway_rules(client, activated):
    instance, key = activated
    sync(client, key)
    kid = IssuedToken.objects.get().kid
    signing_key_create()
    with mock.patch("issuer.tasks.token_refresh.delay"):  # the re-mint has not run yet
        signing_key_revoke(kid, reason="test: revoke")
    instance.refresh_from_db()
    check = checks_of(instance_diagnosis(instance, timezone.now()))["newest token passes the AI gateway"]
    assert not check.ok and "withdrawn key" in check.detail


def test_an_expired_token_fails_the_gateway_rules(client, activated):
    instance, key = activated
    sync(client, key)
    with time_machine.travel(timezone.now() + dt.timedelta(days=4)):
        instance.refresh_from_db()
        check = checks_of(instance_diagnosis(instance, timezone.now()))["newest token passes the AI gateway"]
    assert not check.ok and "expired" in check.detail.lower()


def test_clones_and_the_last_error_are_shown_and_counted(client, activated):
    instance, key = activated
    clone = str(uuid.uuid4())
    sync(client, key, **{"X-Gitlab-Instance-Id": clone})
    instance.refresh_from_db()
    now = timezone.now()
    diagnosis = instance_diagnosis(instance, now)
    assert not checks_of(diagnosis)["one instance id per license key"].ok
    assert [row["instance_id"] for row in diagnosis.instance_ids_seen] == [clone]
    assert "does not match" in diagnosis.last_error and diagnosis.last_error_at is not None
    assert fleet_summary(now).cloned_instances == 1
    instance_foreign_id_record(instance, str(uuid.uuid4()), at=now)
    assert fleet_summary(now).cloned_instances == 1, "instances are counted, not ids"


def test_instance_page_shows_the_diagnosis_ids_and_unique_id(client, activated, admin_user):
    instance, key = activated
    instance.unique_instance_id = "anon-7"
    instance.save(update_fields=["unique_instance_id"])
    sync(client, key, **{"X-Gitlab-Instance-Id": "clone-id"})
    client.force_login(admin_user)
    page = client.get(f"/admin/instances/{instance.pk}/overview/").content.decode()
    assert "anon-7" in page and "clone-id" in page and "another instance (clone?)" in page
    assert 'data-ok="no"' in page
    dashboard = client.get("/admin/").content.decode()
    assert 'data-metric="cloned_instances">1<' in dashboard
