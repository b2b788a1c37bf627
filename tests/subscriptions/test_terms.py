"""A year after 29 February is 28 February: one rule for the command, the admin form and the admin API."""

import datetime as dt
import io
import json

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.management import call_command
from knox.models import AuthToken
from rest_framework.test import APIClient

from subscriptions.models import Subscription
from subscriptions.terms import one_year_after
from tests.factories import CustomerFactory
from tests.helpers import role


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (dt.date(2028, 2, 29), dt.date(2029, 2, 28)),
        (dt.date(2027, 2, 28), dt.date(2028, 2, 28)),
        (dt.date(2027, 3, 1), dt.date(2028, 3, 1)),
        (dt.date(2026, 12, 31), dt.date(2027, 12, 31)),
    ],
)
def test_one_year_after(start, expected):
    assert one_year_after(start) == expected


@pytest.mark.django_db
@pytest.mark.parametrize(("today", "expires"), [("2028-02-29", "2029-02-28"), ("2027-02-28", "2028-02-28")])
def test_the_command_without_dates_on_a_leap_day(today, expires):
    """The conformance kit's own call: no --starts, no --expires."""
    with time_machine.travel(dt.datetime.fromisoformat(today + "T12:00:00+00:00"), tick=False):
        out = io.StringIO()
        call_command(
            "create_subscription", "--customer", "Leap", "--plan", "ultimate", "--seats", "5", "--json", stdout=out
        )
    result = json.loads(out.getvalue().strip().splitlines()[-1])
    assert (result["starts_on"], result["expires_on"]) == (today, expires)


@pytest.mark.django_db
def test_the_admin_form_defaults_a_blank_expiry_to_a_year_later(client, admin_user):
    client.force_login(admin_user)
    form = {
        "customer": CustomerFactory().pk,
        "license_type": "premium",
        "seats": "10",
        "starts_on": "2028-02-29",
        "expires_on": "",
        "add_on_purchases-TOTAL_FORMS": "0",
        "add_on_purchases-INITIAL_FORMS": "0",
        "add_on_purchases-MIN_NUM_FORMS": "0",
        "add_on_purchases-MAX_NUM_FORMS": "1000",
    }
    response = client.post("/admin/subscriptions/subscription/add/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Subscription.objects.get().expires_on == dt.date(2029, 2, 28)


@pytest.mark.django_db
def test_the_admin_api_defaults_a_missing_expiry_to_a_year_later():
    user = User.objects.create_user("billing", password="pw-billing-123", is_staff=True)
    user.groups.add(role("billing"))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user)[1]}")
    answer = api.post(
        "/api/v1/admin/subscriptions/",
        {"customer": CustomerFactory().pk, "license_type": "ultimate", "seats": 3, "starts_on": "2028-02-29"},
        format="json",
    )
    assert answer.status_code == 201, answer.content
    assert answer.json()["expires_on"] == "2029-02-28"
