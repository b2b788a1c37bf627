"""The credits section of the subscription page in Chromium (issue 24): billing reads the month's pools, grants a
waiver through the confirmation form with a reason, and sees the pool appear."""

import uuid

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from credits.collector import billable_event
from credits.services import IngestReport, usage_events_record
from subscriptions.services import instance_activate
from tests.credits.helpers import tracker_event, usage
from tests.factories import SubscriptionFactory
from tests.helpers import role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_billing_grants_a_waiver_from_the_subscription_page(page, live_server, shot):
    subscription = SubscriptionFactory(license_type="premium", seats=3)
    instance = instance_activate(
        activation_code=subscription.activation_code, instance_identifier=str(uuid.uuid4())
    ).instance
    now = timezone.now()
    events = [billable_event(tracker_event(usage(instance)), now) for _ in range(50)]
    usage_events_record(events, at=now, report=IngestReport())
    user = User.objects.create_user("bill", password="correct-horse-battery", is_staff=True)
    user.groups.add(role("billing"))
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "bill")
    page.fill("#id_password", "correct-horse-battery")
    page.keyboard.press("Enter")
    page.wait_for_selector(".issuer-nav")
    page.goto(f"{live_server.url}/admin/subscriptions/subscription/{subscription.pk}/change/")
    section = page.locator("#credits-section")
    assert "1 of 36 credits used" in section.locator("[data-credits=summary]").inner_text()
    shot(page, "50-credits-section")
    page.click("text=Grant credits…")
    page.select_option("#id_kind", "waiver")
    page.fill("#id_amount", "10")
    page.fill("#id_month", timezone.now().date().isoformat())
    page.fill("#id_reason", "goodwill after an outage")
    page.click("input[name=_save]")
    page.wait_for_selector("ul.messagelist")
    page.goto(f"{live_server.url}/admin/subscriptions/subscription/{subscription.pk}/change/")
    assert page.locator("#credits-section tr[data-pool=waiver]").count() == 1
    assert "1 of 46 credits used" in page.locator("[data-credits=summary]").inner_text()
    shot(page, "51-credits-after-waiver")
