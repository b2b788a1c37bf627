"""The audit trail through every door: who acted, from where, why; append-only; read by the admin, the API, the
pages and the export; purged only by its retention job."""

import datetime as dt
import io
import json
import os
import pwd
import uuid

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from knox.models import AuthToken
from rest_framework.test import APIClient

from audit.models import AuditEvent
from audit.services import audit_purge, audit_record
from issuer import tasks
from issuer.keys.services import signing_key_create, signing_key_ensure_active
from subscriptions.services import subscription_update
from tests.factories import AddOnPurchaseFactory, SubscriptionFactory
from tests.helpers import ACTIVATE_MUTATION, graphql_post, postgres_only, role

pytestmark = pytest.mark.django_db
OS_USER = pwd.getpwuid(os.geteuid()).pw_name


def _user(name, role_name):
    user = User.objects.create_user(name, password=f"pw-{name}-123", is_staff=True)
    user.groups.add(role(role_name))
    return user


def _api(user):
    client = APIClient()
    _, token = AuthToken.objects.create(user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_an_admin_action_records_the_user_request_and_address(client):
    subscription = SubscriptionFactory()
    alice = _user("alice", "support")
    client.force_login(alice)
    response = client.post(
        "/admin/subscriptions/subscription/",
        {
            "action": "regenerate_activation_code",
            "_selected_action": [subscription.pk],
            "apply": "1",
            "reason": "leaked",
        },
        HTTP_X_REQUEST_ID="req-42",
        REMOTE_ADDR="192.0.2.7",
    )
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="subscription.regenerate_activation_code")
    assert (event.actor_kind, event.actor_name, event.actor_user_id) == ("user", "alice", alice.pk)
    assert (event.request_id, event.client_address) == ("req-42", "192.0.2.7")
    assert (event.object_type, event.object_id) == ("subscription", str(subscription.pk))
    before, after = event.changes["activation_code"]
    assert before.startswith("sha256:") and after.startswith("sha256:") and before != after


def test_an_api_token_user_is_the_actor_though_drf_authenticates_after_the_middleware():
    subscription = SubscriptionFactory(seats=10)
    bob = _user("bob", "billing")
    assert (
        _api(bob).patch(f"/api/v1/admin/subscriptions/{subscription.pk}/", {"seats": 11}, format="json").status_code
        == 200
    )
    event = AuditEvent.objects.get(action="subscription.update")
    assert (event.actor_name, event.actor_user_id) == ("bob", bob.pk)
    assert event.changes == {"seats": [10, 11]}


def test_a_form_save_in_django_admin_is_recorded(client, admin_user):
    subscription = SubscriptionFactory(seats=10)
    client.force_login(admin_user)
    page = client.get(f"/admin/subscriptions/subscription/{subscription.pk}/change/")
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data.update(
        {
            "seats": 25,
            "add_on_purchases-TOTAL_FORMS": 0,
            "add_on_purchases-INITIAL_FORMS": 0,
            "starts_on": subscription.starts_on.isoformat(),
            "expires_on": subscription.expires_on.isoformat(),
        }
    )
    response = client.post(f"/admin/subscriptions/subscription/{subscription.pk}/change/", data)
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    event = AuditEvent.objects.get(action="subscription.update")
    assert event.actor_name == "admin" and event.changes == {"seats": [10, 25]}


def test_a_command_acts_as_the_operating_system_user_whatever_the_environment_says(monkeypatch):
    monkeypatch.setenv("USER", "alice")
    monkeypatch.setenv("LOGNAME", "alice")
    call_command("signing_keys", "ensure", stdout=io.StringIO())
    actors = set(AuditEvent.objects.values_list("actor_kind", "actor_name"))
    assert actors == {("cli", OS_USER)}


def test_a_celery_task_acts_as_its_job():
    signing_key_ensure_active(at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))  # old enough for a successor
    before = AuditEvent.objects.count()
    tasks.signing_key_policy.delay()
    created = AuditEvent.objects.order_by("id")[before:]
    assert [(e.actor, e.action) for e in created] == [("job:issuer.tasks.signing_key_policy", "signingkey.create")]


def test_an_activation_acts_as_the_instance_and_keeps_no_license_key(client):
    subscription = AddOnPurchaseFactory().subscription
    signing_key_ensure_active()
    identifier = str(uuid.uuid4())
    variables = {
        "gitlabVersion": "17.11.0",
        "activationCode": subscription.activation_code,
        "automated": False,
        "instanceIdentifier": identifier,
        "hostname": "gitlab.example.test",
    }
    _, body = graphql_post(client, ACTIVATE_MUTATION, variables)
    license_key = body["data"]["cloudActivationActivate"]["licenseKey"]
    event = AuditEvent.objects.get(action="instance.activate")
    assert event.actor == f"instance:{identifier}"
    assert event.changes["subscription"] == [None, subscription.pk]
    assert event.changes["license_key_digest"][1].startswith("sha256:")
    assert license_key not in json.dumps(event.changes) and subscription.activation_code not in event.reason


@pytest.mark.parametrize("action", ["revoke", "activate"])
def test_the_keys_page_asks_for_a_reason_and_records_it(client, action):
    active = signing_key_ensure_active()
    pending = signing_key_create()
    kid = active.kid if action == "revoke" else pending.kid
    client.force_login(_user("kim", "key operator"))
    data = {"force": "on"} if action == "activate" else {}
    refused = client.post(f"/admin/keys/{kid}/{action}/", data)
    assert refused.status_code == 200 and "Say why" in refused.content.decode()
    assert not AuditEvent.objects.filter(action__startswith=f"signingkey.{action}", object_id=str(kid)).exists()
    done = client.post(f"/admin/keys/{kid}/{action}/", {**data, "reason": "key file leaked in a backup"})
    assert done.status_code == 302
    event = AuditEvent.objects.filter(object_type="signingkey", action__startswith=f"signingkey.{action}").get(
        object_repr__startswith=kid[:12]
    )
    assert event.actor_name == "kim" and event.reason == "key file leaked in a backup"
    assert event.action == ("signingkey.revoke" if action == "revoke" else "signingkey.activate_forced")


def test_the_command_and_the_api_refuse_a_revoke_without_a_reason():
    active = signing_key_ensure_active()
    with pytest.raises(CommandError, match="needs a reason"):
        call_command("signing_keys", "revoke", "--kid", active.kid, stdout=io.StringIO())
    refused = _api(_user("kim", "key operator")).post(f"/api/v1/admin/signing_keys/{active.kid}/revoke/", {})
    assert refused.status_code == 400 and "required" in str(refused.json()["reason"])
    assert not AuditEvent.objects.filter(action="signingkey.revoke").exists()


def test_no_one_can_change_or_delete_an_event_through_the_admin(client, admin_user):
    with transaction.atomic():
        event = audit_record("customer.create", object_type="customer", object_id="1")
    client.force_login(admin_user)
    assert client.get("/admin/audit/auditevent/").status_code == 200
    assert client.get("/admin/audit/auditevent/add/").status_code == 403
    assert client.post(f"/admin/audit/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    before = AuditEvent.objects.filter(pk=event.pk).values().get()
    changed = {field: value for field, value in before.items() if value is not None and field != "id"}
    refused = client.post(
        f"/admin/audit/auditevent/{event.pk}/change/", {**changed, "action": "nothing.happened", "_save": "Save"}
    )
    assert refused.status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).values().get() == before


@postgres_only
def test_the_database_refuses_to_update_or_delete_a_recent_event_even_to_its_owner():
    """As the owner (a database without a runtime role) or the runtime role (CI), a recent event cannot change."""
    with transaction.atomic():
        event = audit_record("customer.create", object_type="customer", object_id="1")
    refused = "append-only|permission denied"
    with pytest.raises(DatabaseError, match=refused), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="nothing.happened")
    with pytest.raises(DatabaseError, match=refused), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(DatabaseError, match=refused), transaction.atomic(), connection.cursor() as cursor:
        # a connection setting opens nothing any more (it once named the purge's cutoff)
        cursor.execute("SELECT set_config('issuer.audit_purge_before', '9999-01-01', true)")
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "customer.create"


def test_an_address_that_is_not_an_ip_is_not_kept_and_fails_nothing(client):
    subscription = SubscriptionFactory()
    client.force_login(_user("alice", "support"))
    response = client.post(
        "/admin/subscriptions/subscription/",
        {
            "action": "regenerate_activation_code",
            "_selected_action": [subscription.pk],
            "apply": "1",
            "reason": "leaked",
        },
        REMOTE_ADDR="unix:",
    )
    assert response.status_code == 302
    assert AuditEvent.objects.get(action="subscription.regenerate_activation_code").client_address is None


def test_deleting_a_subscription_records_its_purchases_too(client, admin_user):
    purchase = AddOnPurchaseFactory()
    subscription = purchase.subscription
    client.force_login(admin_user)
    response = client.post(f"/admin/subscriptions/subscription/{subscription.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    deleted = {(e.action, e.object_id) for e in AuditEvent.objects.filter(action__endswith=".delete")}
    assert deleted == {("addonpurchase.delete", str(purchase.pk)), ("subscription.delete", str(subscription.pk))}


@pytest.mark.django_db(transaction=True)
def test_recording_outside_a_transaction_is_refused():
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit_record("customer.create", object_type="customer")


def test_the_purge_keeps_everything_without_a_retention_and_records_itself_with_one(settings):
    now = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)
    with transaction.atomic():
        old = audit_record("customer.create", object_type="customer", object_id="1", at=now - dt.timedelta(days=40))
        recent = audit_record("customer.create", object_type="customer", object_id="2", at=now - dt.timedelta(days=5))
    settings.ISSUER_AUDIT_RETENTION_DAYS = None
    assert audit_purge(at=now) == 0 and AuditEvent.objects.count() == 2
    settings.ISSUER_AUDIT_RETENTION_DAYS = 30
    assert audit_purge(at=now) == 1
    assert set(AuditEvent.objects.values_list("pk", flat=True)) - {recent.pk} == {
        AuditEvent.objects.get(action="audit.purge").pk
    }
    purge = AuditEvent.objects.get(action="audit.purge")
    assert purge.changes["events"] == [1, 0] and purge.changes["oldest"][0] == old.at.isoformat()
    assert "30 days" in purge.reason and purge.actor_kind == "cli"


def test_the_api_filters_and_pages_with_a_cursor():
    at = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    with transaction.atomic():
        for n in range(5):
            audit_record("customer.create", object_type="customer", object_id=str(n), at=at + dt.timedelta(hours=n))
        audit_record("subscription.update", object_type="subscription", object_id="9", at=at)
    api = _api(_user("vera", "viewer"))
    first = api.get("/api/v1/admin/audit-events", {"action": "customer.create", "page_size": 2}).json()
    assert [e["object_id"] for e in first["results"]] == ["4", "3"]
    second = api.get(first["next"]).json()
    assert [e["object_id"] for e in second["results"]] == ["2", "1"]
    ranged = api.get(
        "/api/v1/admin/audit-events",
        {"since": (at + dt.timedelta(hours=1)).isoformat(), "until": (at + dt.timedelta(hours=3)).isoformat()},
    ).json()
    assert [e["object_id"] for e in ranged["results"]] == ["2", "1"]
    assert api.get("/api/v1/admin/audit-events", {"object_type": "subscription"}).json()["results"][0]["actor"] == (
        f"cli:{OS_USER}"
    )
    assert api.get("/api/v1/admin/audit-events", {"actor": f"cli:{OS_USER}"}).json()["results"]
    wrong_order = api.get("/api/v1/admin/audit-events", {"since": at.isoformat(), "until": at.isoformat()})
    assert wrong_order.status_code == 400 and "before" in wrong_order.content.decode()
    assert api.get("/api/v1/admin/audit-events", {"since": "yesterday"}).status_code == 400


def test_the_api_is_for_roles_only(admin_user):
    no_role = User.objects.create_user("nobody", password="pw-nobody-123", is_staff=True)
    assert _api(no_role).get("/api/v1/admin/audit-events").status_code == 403
    assert APIClient().get("/api/v1/admin/audit-events").status_code == 401
    superuser = _api(admin_user)
    assert superuser.post("/api/v1/admin/audit-events", {}).status_code == 405
    assert superuser.delete("/api/v1/admin/audit-events").status_code == 405


def test_export_streams_a_range_as_json_lines_or_csv():
    at = dt.datetime(2026, 1, 31, 23, 0, tzinfo=dt.UTC)
    with transaction.atomic():
        for hours in (0, 1, 2):
            audit_record(
                "customer.create", object_type="customer", object_id=str(hours), at=at + dt.timedelta(hours=hours)
            )
    out = io.StringIO()
    call_command("audit_export", "--since", "2026-02-01", "--until", "2026-02-02", stdout=out)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [row["object_id"] for row in rows] == ["1", "2"]
    out = io.StringIO()
    call_command("audit_export", "--since", "2026-01-31", "--until", "2026-02-01T00:30Z", "--format", "csv", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("id,at,actor") and len(lines) == 3
    with pytest.raises(CommandError, match="before"):
        call_command("audit_export", "--since", "2026-02-02", "--until", "2026-02-01")
    with pytest.raises(CommandError, match="not an ISO date"):
        call_command("audit_export", "--since", "last tuesday", "--until", "2026-02-01")


def test_pages_show_their_objects_recent_changes(client, activated):
    instance, _ = activated
    subscription = instance.subscription
    subscription_update(subscription, seats=subscription.seats + 1)
    client.force_login(_user("vera", "viewer"))
    instance_page = client.get(f"/admin/instances/{instance.pk}/overview/").content.decode()
    assert "Recent changes" in instance_page and "instance.activate" in instance_page
    subscription_page = client.get(f"/admin/subscriptions/subscription/{subscription.pk}/change/").content.decode()
    assert "subscription.update" in subscription_page and "instance.activate" not in subscription_page
    keys_page = client.get("/admin/keys/").content.decode()
    assert "signingkey.activate" in keys_page


def test_roles_users_and_api_tokens_changed_through_django_pages_are_recorded(client, admin_user):
    client.force_login(admin_user)
    kim = User.objects.create_user("kim", password="pw-kim-12345", is_staff=True)
    page = client.get(f"/admin/auth/user/{kim.pk}/change/")
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() not in (None, "")}
    data.update({"groups": [role("key operator").pk], "is_superuser": "on", "last_login_0": "", "last_login_1": ""})
    data.pop("password", None)
    data.update({"date_joined_0": kim.date_joined.strftime("%Y-%m-%d"), "date_joined_1": "00:00:00"})
    response = client.post(f"/admin/auth/user/{kim.pk}/change/", data)
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    roles = AuditEvent.objects.filter(action="user.roles", object_id=str(kim.pk)).latest("id")
    assert roles.changes["roles"][1] == ["key operator"] and roles.actor_name == "admin"
    update = AuditEvent.objects.get(action="user.update", object_id=str(kim.pk))
    assert update.changes["is_superuser"] == [False, True]
    _, token = AuthToken.objects.create(kim)
    created = AuditEvent.objects.get(action="apitoken.create")
    assert created.changes["owner"] == [None, "kim"] and token not in json.dumps(created.changes)
    assert token[:8] == created.object_id[:8] and len(created.object_id) < len(token)
    AuthToken.objects.filter(user=kim).delete()
    assert AuditEvent.objects.filter(action="apitoken.revoke", object_id=created.object_id).exists()
    kim.refresh_from_db()
    kim.set_password("another-pw-12345")
    kim.save()
    changed = AuditEvent.objects.filter(action="user.update", object_id=str(kim.pk)).latest("id")
    assert changed.changes == {"password": ["(set)", "(changed)"]}
    assert kim.password not in json.dumps([e.changes for e in AuditEvent.objects.all()])
