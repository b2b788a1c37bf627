"""Issue 22 (low): back-office accounts. A username is locked out after failures spread over many addresses; admin
API tokens die with a password change or a lost staff status; a token made in the admin always expires."""

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from knox.models import AuthToken
from knox.settings import knox_settings

pytestmark = pytest.mark.django_db


def _login(address: str, password: str):
    client = Client(REMOTE_ADDR=address)
    return client, client.post("/admin/login/", {"username": "victim", "password": password})


def test_failures_spread_over_many_addresses_lock_the_username(settings):
    User.objects.create_user("victim", password="the-right-password", is_staff=True)
    per_address = settings.AXES_FAILURE_LIMIT - 1  # under the per-address limit everywhere
    for number in range(20):
        for _ in range(per_address):
            _login(f"203.0.113.{number}", "wrong")
    client, response = _login("198.51.100.99", "the-right-password")
    assert response.status_code == 429, "80 failures from 20 addresses lock the username"
    assert "_auth_user_id" not in client.session


def test_a_few_failures_elsewhere_do_not_lock_the_username(settings):
    User.objects.create_user("victim", password="the-right-password", is_staff=True)
    for number in range(3):
        for _ in range(settings.AXES_FAILURE_LIMIT):
            _login(f"203.0.113.{number}", "wrong")  # three addresses locked out, 15 failures in all
    assert _login("203.0.113.1", "the-right-password")[1].status_code == 429, "the pair tier still holds"
    client, response = _login("192.0.2.10", "the-right-password")
    assert response.status_code == 302 and "_auth_user_id" in client.session


def test_the_username_tier_is_lifted_by_axes_reset_username(settings):
    from django.core.management import call_command

    User.objects.create_user("victim", password="the-right-password", is_staff=True)
    for number in range(settings.AXES_USERNAME_FAILURE_LIMIT):
        _login(f"203.0.113.{number}", "wrong")
    assert _login("192.0.2.10", "the-right-password")[1].status_code == 429
    call_command("axes_reset_username", "victim")
    assert _login("192.0.2.10", "the-right-password")[1].status_code == 302


@pytest.fixture
def staffer():
    user = User.objects.create_user("tokenholder", password="first-password", is_staff=True)
    AuthToken.objects.create(user)
    AuthToken.objects.create(user)
    return user


def test_a_password_change_deletes_the_users_api_tokens(staffer):
    other = User.objects.create_user("bystander", password="pw", is_staff=True)
    AuthToken.objects.create(other)
    staffer.set_password("second-password")
    staffer.save()
    assert not AuthToken.objects.filter(user=staffer).exists()
    assert AuthToken.objects.filter(user=other).count() == 1


@pytest.mark.parametrize("flag", ["is_staff", "is_active"])
def test_losing_staff_status_or_being_deactivated_deletes_the_tokens(staffer, flag):
    setattr(staffer, flag, False)
    staffer.save()
    assert not AuthToken.objects.filter(user=staffer).exists()


def test_other_saves_keep_the_tokens(staffer):
    staffer.first_name = "Ada"
    staffer.save()
    staffer.last_login = timezone.now()
    staffer.save(update_fields=["last_login"])
    assert AuthToken.objects.filter(user=staffer).count() == 2


def test_revoked_tokens_are_audited(staffer):
    from audit.models import AuditEvent

    staffer.is_staff = False
    staffer.save()
    assert AuditEvent.objects.filter(action="apitoken.revoke").count() == 2


def test_a_password_change_in_the_admin_revokes_the_api(staffer, admin_client):
    from rest_framework.test import APIClient

    _, token = AuthToken.objects.create(staffer)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = admin_client.post(
        f"/admin/auth/user/{staffer.pk}/password/",
        {"password1": "a-new-long-password-9", "password2": "a-new-long-password-9"},
    )
    assert response.status_code == 302, response.content[:500]
    assert api.get("/api/v1/admin/subscriptions/").status_code == 401


def _add_token(admin_client, user, expiry: dt.datetime | None):
    data = {"user": user.pk}
    if expiry is not None:
        local = timezone.localtime(expiry)
        data |= {"expiry_0": local.strftime("%Y-%m-%d"), "expiry_1": local.strftime("%H:%M:%S")}
    else:
        data |= {"expiry_0": "", "expiry_1": ""}
    return admin_client.post("/admin/knox/authtoken/add/", data)


def test_an_admin_made_token_cannot_have_a_blank_expiry(admin_client, admin_user):
    response = _add_token(admin_client, admin_user, None)
    assert response.status_code == 200 and not AuthToken.objects.exists()
    assert "must expire" in response.content.decode() or "required" in response.content.decode()


def test_an_admin_made_token_cannot_outlive_the_ttl(admin_client, admin_user):
    response = _add_token(admin_client, admin_user, timezone.now() + knox_settings.TOKEN_TTL + dt.timedelta(days=1))
    assert response.status_code == 200 and not AuthToken.objects.exists()
    assert "at most" in response.content.decode()


def test_an_admin_made_token_defaults_to_the_ttl_and_expires(admin_client, admin_user):
    page = admin_client.get("/admin/knox/authtoken/add/").content.decode()
    default = timezone.localtime(timezone.now() + knox_settings.TOKEN_TTL).strftime("%Y-%m-%d")
    assert default in page, "the expiry is filled in with now + TTL"
    response = _add_token(admin_client, admin_user, timezone.now() + dt.timedelta(days=3))
    assert response.status_code == 302
    token = AuthToken.objects.get()
    assert token.expiry is not None and token.expiry <= timezone.now() + dt.timedelta(days=3)


def test_the_lock_out_page_is_styled_and_says_how_long_and_how_to_unlock(settings):
    User.objects.create_user("victim", password="the-right-password", is_staff=True)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login("203.0.113.7", "wrong")
    response = _login("203.0.113.7", "the-right-password")[1]
    assert response.status_code == 429
    page = response.content.decode()
    assert "issuer/backoffice.css" in page and "<html" in page, "the back office's own page, not axes' bare text"
    assert "15 minutes" in page and "last failed attempt" in page
    assert "manage.py axes_reset_username victim" in page
