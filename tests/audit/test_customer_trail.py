"""Issue 27: the audit trail answers "what happened to this customer": every event names the customer its object
belonged to, a search finds events by object or customer name in any case, each event links to its object and its
customer, changes read as on the pages' "Recent changes", an event has no Django history, and `audit_export`
runs up to now by default."""

import io
import json

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from audit.models import AuditEvent
from subscriptions import services
from subscriptions.models import Instance
from tests.factories import AddOnPurchaseFactory, SubscriptionFactory
from tests.helpers import role

pytestmark = pytest.mark.django_db
TRAIL = "/admin/audit/auditevent/"
ACTION = '<td class="field-action">{}</td>'


def _viewer() -> Client:
    user = User.objects.create_user("vera", password="pw-vera-123", is_staff=True)
    user.groups.add(role("viewer"))
    client = Client()
    client.force_login(user)
    return client


def test_every_event_names_the_customer_of_its_object(activated):
    instance, _ = activated
    subscription = instance.subscription
    customer = subscription.customer
    purchase = AddOnPurchaseFactory(subscription=subscription)
    services.subscription_update(subscription, seats=subscription.seats + 1)
    services.add_on_purchase_set_suspended(purchase, True, reason="unpaid")
    services.instance_release(instance, reason="moving")
    for action in ("subscription.update", "addonpurchase.suspend", "instance.activate", "instance.release"):
        event = AuditEvent.objects.get(action=action)
        assert (event.customer_id, event.customer_name) == (customer.pk, customer.name), action
    other = services.customer_create(name="Other Ltd")
    assert AuditEvent.objects.get(action="customer.create").customer_id == other.pk


def test_the_trail_is_searched_by_object_and_customer_name_in_any_case(activated):
    instance, _ = activated
    customer = instance.subscription.customer
    services.instance_set_suspended(instance, True, reason="abuse")
    unrelated = SubscriptionFactory()
    services.subscription_update(unrelated, seats=unrelated.seats + 1)
    client = _viewer()

    by_host = client.get(TRAIL, {"q": instance.hostname.upper()[:10]}).content.decode()
    assert ACTION.format("instance.suspend") in by_host and ACTION.format("subscription.update") not in by_host
    by_customer = client.get(TRAIL, {"q": customer.name.lower()}).content.decode()
    assert ACTION.format("instance.suspend") in by_customer and unrelated.customer.name not in by_customer
    assert "0 audit events" in client.get(TRAIL, {"q": "no-such-name-anywhere"}).content.decode()


def test_each_event_links_to_its_object_and_its_customer_with_its_changes(activated):
    instance, _ = activated
    subscription = instance.subscription
    services.subscription_update(subscription, seats=subscription.seats + 5)
    page = _viewer().get(TRAIL, {"q": "subscription.update"}).content.decode()
    assert f'href="/admin/subscriptions/subscription/{subscription.pk}/change/"' in page
    assert f'href="/admin/subscriptions/customer/{subscription.customer_id}/change/"' in page
    assert f"<div><code>seats</code>: {subscription.seats} → {subscription.seats + 5}</div>" in page


def test_a_customers_events_are_one_link_away(activated):
    instance, _ = activated
    customer = instance.subscription.customer
    services.instance_set_suspended(instance, True, reason="abuse")
    services.subscription_set_suspended(SubscriptionFactory(), True, reason="another customer's")
    page = _viewer().get(TRAIL, {"customer_id": customer.pk})
    assert page.status_code == 200
    body = page.content.decode()
    assert ACTION.format("instance.suspend") in body
    assert ACTION.format("subscription.suspend") not in body


def test_an_event_has_no_history_button_or_page(activated):
    event = AuditEvent.objects.get(action="instance.activate")
    client = _viewer()
    page = client.get(f"{TRAIL}{event.pk}/change/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "historylink" not in body and "/history/" not in body
    assert "<code>hostname</code>" in body  # its changes, as on the pages
    assert client.get(f"{TRAIL}{event.pk}/history/").status_code == 404


def test_audit_export_runs_up_to_now_by_default(activated):
    instance, _ = activated
    services.instance_set_suspended(Instance.objects.get(pk=instance.pk), True, reason="abuse")
    out = io.StringIO()
    call_command("audit_export", "--since", "2000-01-01", stdout=out)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    suspended = next(row for row in rows if row["action"] == "instance.suspend")
    assert suspended["reason"] == "abuse" and suspended["customer_id"] == instance.subscription.customer_id
