"""Admin API tokens (django-rest-knox): stored as a digest, shown once, expiring, revocable, listed by prefix."""

import datetime as dt

import pytest
import time_machine
from django.contrib.auth.models import User
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.helpers import role

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer():
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.groups.add(role("viewer"))
    return user


def call(token: str):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return api.get("/api/v1/admin/instances/")


def test_a_token_works_and_only_its_digest_is_stored(viewer):
    record, token = AuthToken.objects.create(viewer)
    assert token.startswith("iss_") and call(token).status_code == 200
    assert token not in str(AuthToken.objects.values().get(pk=record.pk))


def test_a_token_expires(viewer):
    _, token = AuthToken.objects.create(viewer)
    with time_machine.travel(timezone.now() + dt.timedelta(days=31)):
        assert call(token).status_code == 401


def test_a_deleted_token_is_refused_at_once(viewer):
    record, token = AuthToken.objects.create(viewer)
    record.delete()
    assert call(token).status_code == 401


def test_tokens_are_shown_once_and_listed_by_prefix_and_owner(client, viewer, admin_user):
    client.force_login(admin_user)
    expiry = (timezone.now() + dt.timedelta(days=10)).date().isoformat()
    created = client.post(
        "/admin/knox/authtoken/add/", {"user": viewer.pk, "expiry_0": expiry, "expiry_1": "00:00:00"}, follow=True
    )
    messages = [str(message) for message in created.context["messages"]]
    token = next(text.split()[-1] for text in messages if text.startswith("TOKEN "))
    assert call(token).status_code == 200
    listing = client.get("/admin/knox/authtoken/").content.decode()
    assert token not in listing and token[:8] in listing and "viewer" in listing
