"""Issue 27, item 3: an action that changes access (suspend and lift an instance or a subscription, release an
instance, cancel, suspend or resume an add-on, regenerate a code) never acts on the list's first post. It shows a
confirmation page with a required reason, and the reason reaches the audit trail."""

import pytest

from audit.models import AuditEvent
from subscriptions import services
from subscriptions.models import AddOnPurchase, Instance, Subscription

pytestmark = pytest.mark.django_db

INSTANCES = "/admin/subscriptions/instance/"
SUBSCRIPTIONS = "/admin/subscriptions/subscription/"
PURCHASES = "/admin/subscriptions/addonpurchase/"


def _state(obj) -> tuple:
    obj = type(obj).objects.get(pk=obj.pk)
    return tuple(
        getattr(obj, name, None)
        for name in ("suspended", "subscription_id", "cancelled_at", "activation_code", "released_from_id")
    )


def _target(kind: str, instance: Instance):
    if kind == "instance":
        return instance
    if kind == "subscription":
        return instance.subscription
    return AddOnPurchase.objects.filter(subscription=instance.subscription).first()


def _prepare(action: str, target) -> None:
    """The state an action applies to: lifting needs a suspension, lifting a reservation needs a release."""
    if action == "unsuspend":
        setter = {
            Instance: services.instance_set_suspended,
            Subscription: services.subscription_set_suspended,
            AddOnPurchase: services.add_on_purchase_set_suspended,
        }[type(target)]
        setter(target, True)
    if action == "release_clear":
        services.instance_release(target)


ACTIONS = [
    (INSTANCES, "instance", "suspend", "instance.suspend"),
    (INSTANCES, "instance", "unsuspend", "instance.lift_suspension"),
    (INSTANCES, "instance", "release", "instance.release"),
    (INSTANCES, "instance", "release_clear", "instance.release_clear"),
    (SUBSCRIPTIONS, "subscription", "suspend", "subscription.suspend"),
    (SUBSCRIPTIONS, "subscription", "unsuspend", "subscription.lift_suspension"),
    (SUBSCRIPTIONS, "subscription", "regenerate_activation_code", "subscription.regenerate_activation_code"),
    (PURCHASES, "purchase", "cancel", "addonpurchase.cancel"),
    (PURCHASES, "purchase", "suspend", "addonpurchase.suspend"),
    (PURCHASES, "purchase", "unsuspend", "addonpurchase.resume"),
]


@pytest.mark.parametrize(("changelist", "kind", "action", "recorded"), ACTIONS)
def test_an_action_asks_a_reason_before_it_acts_and_records_it(
    admin_client, activated, changelist, kind, action, recorded
):
    target = _target(kind, activated[0])
    _prepare(action, target)
    before = _state(target)
    selection = {"action": action, "_selected_action": [target.pk]}

    page = admin_client.post(changelist, selection)
    assert page.status_code == 200 and 'name="reason"' in page.content.decode() and "Confirm:" in page.content.decode()
    assert _state(target) == before  # the list's post only asked

    for blank in ("", "   ", "\u200b\u2060"):
        refused = admin_client.post(changelist, {**selection, "apply": "1", "reason": blank})
        assert refused.status_code == 200 and "Say why" in refused.content.decode()
        assert _state(target) == before

    done = admin_client.post(changelist, {**selection, "apply": "1", "reason": "  ticket 4711  "})
    assert done.status_code == 302
    assert _state(target) != before
    event = AuditEvent.objects.filter(action=recorded, object_id=str(target.pk)).latest("at", "id")
    assert event.reason == "ticket 4711" and event.actor_name == "admin"


def test_release_for_a_transfer_asks_a_reason_too(admin_client, activated, enterprise_subscription):
    instance = activated[0]
    selection = {"action": "release_to", "_selected_action": [instance.pk], "apply": "1"}
    target = enterprise_subscription.customer.pk
    admin_client.post(INSTANCES, {**selection, "transfer_to": target})
    assert Instance.objects.get(pk=instance.pk).subscription_id is not None
    admin_client.post(INSTANCES, {**selection, "transfer_to": target, "reason": "the customer's own move"})
    assert Instance.objects.get(pk=instance.pk).subscription_id is None
    assert AuditEvent.objects.get(action="instance.release").reason == "the customer's own move"


def test_the_admin_api_records_a_reason_when_given(activated, admin_user):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(admin_user)
    instance = activated[0]
    answer = api.post(
        f"/api/v1/admin/instances/{instance.pk}/suspend/", {"suspended": True, "reason": "abuse report"}, format="json"
    )
    assert answer.status_code == 200
    assert AuditEvent.objects.get(action="instance.suspend").reason == "abuse report"
