"""Issue 27: a customer's page is a hub (what they have and where it is used), each section bounded with a link to
its filtered list, and Customers are in the top navigation."""

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from subscriptions import services
from subscriptions.models import SeatReport
from subscriptions.selectors import CUSTOMER_SECTION_ROWS
from tests.factories import AddOnPurchaseFactory, SubscriptionFactory, today
from tests.helpers import role

pytestmark = pytest.mark.django_db


def _client(role_name: str) -> Client:
    user = User.objects.create_user(role_name.replace(" ", "-"), password="pw-12345-x", is_staff=True)
    user.groups.add(role(role_name))
    client = Client()
    client.force_login(user)
    return client


def _page(client: Client, customer) -> str:
    answer = client.get(f"/admin/subscriptions/customer/{customer.pk}/change/")
    assert answer.status_code == 200
    return answer.content.decode()


def test_the_customer_page_shows_what_they_have_and_where_it_is_used(activated):
    instance, _ = activated
    subscription = instance.subscription
    customer = subscription.customer
    early = AddOnPurchaseFactory(subscription=subscription, add_on="duo_pro", quantity=7)
    services.add_on_purchase_update(early, expires_on=subscription.expires_on - dt.timedelta(days=10))
    SeatReport.objects.create(
        instance=instance, reported_at=instance.activated_at, billable_users=42, max_historical_users=50
    )
    services.instance_set_suspended(instance, True, reason="abuse report")
    others = SubscriptionFactory()

    page = _page(_client("viewer"), customer)
    assert f'data-subscription="{subscription.pk}"' in page and 'data-status="suspended"' not in page
    assert f'data-subscription="{others.pk}"' not in page
    assert f'data-purchase="{early.purchase_id}"' in page and "ends before its subscription" in page
    assert f'data-instance="{instance.instance_identifier}"' in page and instance.gitlab_version in page
    assert "<td>42</td>" in page  # the seat report
    assert "instance.suspend" in page and "abuse report" in page  # the customer's recent changes
    assert 'id="customer-credits-section"' in page
    for link in (
        f"/admin/subscriptions/subscription/?customer__id__exact={customer.pk}",
        f"/admin/subscriptions/addonpurchase/?subscription__customer__id__exact={customer.pk}",
        f"/admin/subscriptions/instance/?subscription__customer__id__exact={customer.pk}",
        f"/admin/subscriptions/seatreport/?instance__subscription__customer__id__exact={customer.pk}",
        f"/admin/audit/auditevent/?customer_id={customer.pk}",
    ):
        assert f'href="{link}"' in page
    viewer = _client("support")
    for path in (
        f"/admin/subscriptions/subscription/?customer__id__exact={customer.pk}",
        f"/admin/subscriptions/instance/?subscription__customer__id__exact={customer.pk}",
    ):
        listed = viewer.get(path)
        assert listed.status_code == 200 and str(others.customer) not in listed.content.decode()


def test_each_section_is_bounded_and_the_page_costs_the_same_for_a_large_customer():
    customer = SubscriptionFactory().customer
    client = _client("billing")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            _page(client, customer)
        return len(captured)

    few = queries()
    for _ in range(CUSTOMER_SECTION_ROWS + 5):
        SubscriptionFactory(customer=customer, starts_on=today())
    page = _page(client, customer)
    assert page.count("data-subscription=") == CUSTOMER_SECTION_ROWS and "See all subscriptions" in page
    # credits read per shown subscription; everything else is one query a section
    assert queries() <= few + CUSTOMER_SECTION_ROWS * 8


def test_customers_are_in_the_top_navigation():
    page = _client("viewer").get("/admin/").content.decode()
    assert 'href="/admin/subscriptions/customer/">Customers</a>' in page


def test_the_dashboard_lists_running_subscriptions_with_lapsed_add_ons():
    running = SubscriptionFactory(
        starts_on=today() - dt.timedelta(days=400), expires_on=today() + dt.timedelta(days=300)
    )
    lapsed = AddOnPurchaseFactory(
        subscription=running, started_on=running.starts_on, expires_on=today() - dt.timedelta(days=35)
    )
    current = AddOnPurchaseFactory(subscription=running, started_on=running.starts_on, expires_on=running.expires_on)
    cancelled = AddOnPurchaseFactory(
        subscription=running, started_on=running.starts_on, expires_on=today() - dt.timedelta(days=5)
    )
    services.add_on_purchase_cancel(cancelled, reason="refund")
    ended = SubscriptionFactory(starts_on=today() - dt.timedelta(days=400), expires_on=today() - dt.timedelta(days=30))
    with_ended = AddOnPurchaseFactory(
        subscription=ended, started_on=ended.starts_on, expires_on=today() - dt.timedelta(days=40)
    )
    page = _client("viewer").get("/admin/").content.decode()
    assert f'data-lapsed="{lapsed.purchase_id}"' in page
    for not_listed in (current, cancelled, with_ended):
        assert f'data-lapsed="{not_listed.purchase_id}"' not in page
