"""Suspend and lift through every door (admin actions, admin API): each reaches the service, and a sync sees it."""

import pytest
from rest_framework.test import APIClient

from subscriptions.models import Instance, Subscription
from tests.helpers import sync

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("changelist", "model"),
    [("/admin/subscriptions/subscription/", Subscription), ("/admin/subscriptions/instance/", Instance)],
)
def test_admin_actions_suspend_and_lift(client, admin_user, activated, changelist, model):
    instance, key = activated
    target = instance if model is Instance else instance.subscription
    client.force_login(admin_user)
    confirmed = {"_selected_action": [target.pk], "apply": "1", "reason": "unpaid invoice"}
    response = client.post(changelist, {"action": "suspend", **confirmed}, follow=True)
    assert "1 suspended." in response.content.decode()
    target.refresh_from_db()
    assert target.suspended
    _, body = sync(client, key)
    assert body["data"]["cloudConnectorAccess"]["serviceToken"] is None
    client.post(changelist, {"action": "unsuspend", **confirmed})
    target.refresh_from_db()
    assert not target.suspended
    _, body = sync(client, key)
    assert body["data"]["cloudConnectorAccess"]["serviceToken"]["token"]


@pytest.mark.parametrize("collection", ["subscriptions", "instances"])
def test_admin_api_suspends_and_lifts(admin_user, activated, collection):
    instance, _ = activated
    target = instance if collection == "instances" else instance.subscription
    api = APIClient()
    api.force_authenticate(admin_user)
    url = f"/api/v1/admin/{collection}/{target.pk}/suspend/"
    answer = api.post(url, {"suspended": True}, format="json")
    assert answer.status_code == 200 and answer.json()["suspended"] is True
    target.refresh_from_db()
    assert target.suspended
    assert api.post(url, {"suspended": False}, format="json").json()["suspended"] is False
    assert api.post(url, {"suspended": "maybe"}, format="json").status_code == 400
