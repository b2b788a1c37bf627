"""Issue 27, the back office around the customer: what misled (an unsaved activation code, add-ons left behind by an
extension, an API answer without the new code), selling with defaults, the subscription list's status and expiry
filters, and the instances on a subscription's page."""

import datetime as dt
import re

import pytest
from django.test import Client
from rest_framework.test import APIClient

from audit.models import AuditEvent
from subscriptions import services
from subscriptions.models import ACTIVATION_CODE_ALPHABET, AddOnPurchase, Subscription
from subscriptions.selectors import SUBSCRIPTION_STATUSES, subscription_status, subscriptions_in_status
from subscriptions.terms import one_year_after
from tests.factories import AddOnPurchaseFactory, CustomerFactory, SubscriptionFactory, today
from tests.helpers import user_in

pytestmark = pytest.mark.django_db

CODE = re.compile(rf"[{ACTIVATION_CODE_ALPHABET}]{{24}}")


def as_role(role: str) -> Client:
    client = Client()
    client.force_login(user_in(role))
    return client


# 1. The add page shows no activation code: the one an unsaved form showed was not the one the save made.


def test_the_add_page_shows_no_activation_code_and_the_saved_page_shows_the_saved_one():
    client = as_role("superuser")
    page = client.get("/admin/subscriptions/subscription/add/").content.decode()
    assert "field-activation_code" not in page
    assert not CODE.search(page)
    customer = CustomerFactory()
    saved = client.post(
        "/admin/subscriptions/subscription/add/",
        {
            "customer": customer.pk,
            "license_type": "ultimate",
            "seats": 10,
            "starts_on": today().isoformat(),
            "expires_on": "",
            **_no_rows(),
            "_continue": "1",
        },
        follow=True,
    ).content.decode()
    subscription = Subscription.objects.get(customer=customer)
    assert f'<div class="readonly">{subscription.activation_code}</div>' in saved


# 4. The admin API's regenerate action answers with the new code (for roles that see codes).


def test_the_api_regenerate_action_returns_the_new_code():
    subscription = SubscriptionFactory()
    api = APIClient()
    api.force_authenticate(user_in("support"))
    answer = api.post(f"/api/v1/admin/subscriptions/{subscription.pk}/regenerate_activation_code/")
    assert answer.status_code == 200
    subscription.refresh_from_db()
    assert answer.json()["activation_code"] == subscription.activation_code


# 2. Renew / extend: add-ons that end with the subscription move with it by default; others are offered.


def _renewable():
    subscription = SubscriptionFactory(
        starts_on=today() - dt.timedelta(days=400), expires_on=today() - dt.timedelta(days=5)
    )
    with_it = AddOnPurchaseFactory(subscription=subscription, add_on="duo_pro", quantity=5)
    earlier = AddOnPurchaseFactory(
        subscription=subscription, add_on="duo_enterprise", quantity=3, expires_on=today() - dt.timedelta(days=60)
    )
    cancelled = AddOnPurchaseFactory(subscription=subscription, add_on="duo_core", quantity=1)
    services.add_on_purchase_cancel(cancelled)
    return subscription, with_it, earlier, cancelled


def test_the_renew_page_proposes_the_add_ons_that_end_with_the_subscription():
    subscription, with_it, earlier, cancelled = _renewable()
    page = as_role("billing").get(f"/admin/subscriptions/subscription/{subscription.pk}/renew/").content.decode()
    assert f'value="{one_year_after(subscription.expires_on).isoformat()}"' in page
    assert re.search(rf'value="{with_it.pk}"[^>]*checked', page)
    assert f'value="{earlier.pk}"' in page and not re.search(rf'value="{earlier.pk}"[^>]*checked', page)
    assert cancelled.purchase_id not in page


def test_renewing_moves_the_chosen_add_ons_and_says_why_in_the_audit_trail():
    subscription, with_it, earlier, cancelled = _renewable()
    new_end = today() + dt.timedelta(days=365)
    response = as_role("billing").post(
        f"/admin/subscriptions/subscription/{subscription.pk}/renew/",
        {"expires_on": new_end.isoformat(), "add_ons": [with_it.pk]},
    )
    assert response.status_code == 302
    assert Subscription.objects.get(pk=subscription.pk).expires_on == new_end
    assert AddOnPurchase.objects.get(pk=with_it.pk).expires_on == new_end
    assert AddOnPurchase.objects.get(pk=earlier.pk).expires_on == earlier.expires_on  # not chosen: stays
    assert AddOnPurchase.objects.get(pk=cancelled.pk).expires_on == cancelled.expires_on
    events = AuditEvent.objects.filter(action__in=["subscription.extend", "addonpurchase.extend"])
    assert events.count() == 2
    assert all(event.reason == f"renewed from {subscription.expires_on}" for event in events)


def test_the_renewed_instance_keeps_its_duo_seats(activated):
    instance, _ = activated
    subscription = instance.subscription
    services.subscription_extend(
        subscription, expires_on=subscription.expires_on + dt.timedelta(days=365), add_ons=[]
    )  # the silent way: the add-on stays behind
    from subscriptions.selectors import instance_entitlements

    later = dt.datetime.combine(subscription.expires_on + dt.timedelta(days=10), dt.time(12), tzinfo=dt.UTC)
    assert instance_entitlements(instance, later).duo_seat_count == 0
    page = as_role("viewer").get(f"/admin/subscriptions/subscription/{subscription.pk}/change/").content.decode()
    assert 'id="add-ons-ending-early"' in page
    purchase = subscription.add_on_purchases.get()
    assert f'data-purchase="{purchase.purchase_id}"' in page
    # the renewal page offers it (it no longer ends with the subscription) and moving it brings the seats back
    services.subscription_extend(
        subscription, expires_on=subscription.expires_on + dt.timedelta(days=400), add_ons=[purchase]
    )
    instance.refresh_from_db()
    assert instance_entitlements(instance, later).duo_seat_count == purchase.quantity
    page = as_role("viewer").get(f"/admin/subscriptions/subscription/{subscription.pk}/change/").content.decode()
    assert 'id="add-ons-ending-early"' not in page


def test_a_renewal_never_shortens_and_only_billing_may_renew():
    subscription, with_it, _, _ = _renewable()
    url = f"/admin/subscriptions/subscription/{subscription.pk}/renew/"
    refused = as_role("billing").post(url, {"expires_on": subscription.starts_on.isoformat(), "add_ons": []})
    assert refused.status_code == 200 and b"later than" in refused.content
    assert Subscription.objects.get(pk=subscription.pk).expires_on == subscription.expires_on
    for role in ("viewer", "support"):
        assert as_role(role).get(url).status_code == 403
        page = as_role(role).get(f"/admin/subscriptions/subscription/{subscription.pk}/change/").content.decode()
        assert 'id="renew-link"' not in page
    other = AddOnPurchaseFactory()
    with pytest.raises(Exception, match="not a purchase of this subscription"):
        services.subscription_extend(subscription, expires_on=today() + dt.timedelta(days=9), add_ons=[other])


# Selling takes defaults: start today, a year later, add-on rows on the subscription's dates.


def _no_rows(total: int = 0) -> dict:
    return {
        "add_on_purchases-TOTAL_FORMS": str(total),
        "add_on_purchases-INITIAL_FORMS": "0",
        "add_on_purchases-MIN_NUM_FORMS": "0",
        "add_on_purchases-MAX_NUM_FORMS": "1000",
    }


def test_a_sale_is_one_date_or_none():
    client = as_role("billing")
    page = client.get("/admin/subscriptions/subscription/add/").content.decode()
    assert re.search(rf'name="starts_on"[^>]*value="{today().isoformat()}"', page) or re.search(
        rf'value="{today().isoformat()}"[^>]*name="starts_on"', page
    )
    customer = CustomerFactory()
    starts = dt.date(2028, 2, 29)
    response = client.post(
        "/admin/subscriptions/subscription/add/",
        {
            "customer": customer.pk,
            "license_type": "ultimate",
            "seats": 10,
            "starts_on": starts.isoformat(),
            "expires_on": "",
            **_no_rows(1),
            "add_on_purchases-0-add_on": "duo_pro",
            "add_on_purchases-0-quantity": "5",
            "add_on_purchases-0-started_on": "",
            "add_on_purchases-0-expires_on": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    subscription = Subscription.objects.get(customer=customer)
    assert (subscription.starts_on, subscription.expires_on) == (starts, dt.date(2029, 2, 28))
    purchase = subscription.add_on_purchases.get()
    assert (purchase.started_on, purchase.expires_on) == (starts, dt.date(2029, 2, 28))


def test_a_new_add_on_row_on_a_saved_subscription_starts_on_its_dates():
    subscription = SubscriptionFactory()
    page = as_role("billing").get(f"/admin/subscriptions/subscription/{subscription.pk}/change/").content.decode()
    empty_row = page[page.index('id="add_on_purchases-empty"') :]
    assert f'value="{subscription.starts_on.isoformat()}"' in empty_row
    assert f'value="{subscription.expires_on.isoformat()}"' in empty_row


# The list: a status column with its filter, forward-looking expiry filters, booleans as words.


def _one_of_each() -> dict[str, Subscription]:
    t = today()
    return {
        "upcoming": SubscriptionFactory(starts_on=t + dt.timedelta(days=3), expires_on=t + dt.timedelta(days=20)),
        "active": SubscriptionFactory(starts_on=t - dt.timedelta(days=3), expires_on=t + dt.timedelta(days=31)),
        "expiring": SubscriptionFactory(starts_on=t - dt.timedelta(days=3), expires_on=t + dt.timedelta(days=30)),
        "expired": SubscriptionFactory(starts_on=t - dt.timedelta(days=30), expires_on=t),
        "suspended": SubscriptionFactory(suspended=True),
    }


def test_the_status_in_memory_and_the_status_as_a_query_agree():
    made = _one_of_each()
    for day_offset in (-40, -4, 0, 1, 4, 25, 40):
        day = today() + dt.timedelta(days=day_offset)
        for status in SUBSCRIPTION_STATUSES:
            queried = set(subscriptions_in_status(Subscription.objects.all(), status, day))
            in_memory = {s for s in Subscription.objects.all() if subscription_status(s, day) == status}
            assert queried == in_memory, (day_offset, status)
    assert {status: subscription_status(s, today()) for status, s in made.items()} == {s: s for s in made}


def test_the_status_column_and_filter():
    made = _one_of_each()
    client = as_role("viewer")
    for status, subscription in made.items():
        page = client.get("/admin/subscriptions/subscription/", {"status": status}).content.decode()
        shown = set(re.findall(r"/admin/subscriptions/subscription/(\d+)/change/", page))
        assert shown == {str(subscription.pk)}, status
        assert f'<td class="field-status">{status}</td>' in page


def test_expiry_filters_look_forward():
    t = today()
    soon = SubscriptionFactory(expires_on=t + dt.timedelta(days=10))
    later = SubscriptionFactory(expires_on=t + dt.timedelta(days=50))
    last = SubscriptionFactory(expires_on=t + dt.timedelta(days=80))
    far = SubscriptionFactory(expires_on=t + dt.timedelta(days=200))
    gone = SubscriptionFactory(starts_on=t - dt.timedelta(days=90), expires_on=t - dt.timedelta(days=1))
    client = as_role("viewer")
    expected = {"30": {soon}, "60": {soon, later}, "90": {soon, later, last}, "expired": {gone}}
    for value, subscriptions in expected.items():
        page = client.get("/admin/subscriptions/subscription/", {"expires": value}).content.decode()
        shown = set(re.findall(r"/admin/subscriptions/subscription/(\d+)/change/", page))
        assert shown == {str(s.pk) for s in subscriptions}, value
    assert far.pk  # in none of them
    assert client.get("/admin/subscriptions/subscription/", {"expires_on__gte": t.isoformat()}).status_code == 400


def test_booleans_read_as_words(activated):
    instance, _ = activated
    SubscriptionFactory(trial=True)
    client = as_role("viewer")
    for url in ("/admin/subscriptions/subscription/", "/admin/subscriptions/instance/"):
        page = client.get(url).content.decode()
        assert "icon-no.svg" not in page and "icon-yes.svg" not in page.split('id="changelist-filter"')[0], url
    assert (
        '<td class="field-trial_word">trial</td>' in client.get("/admin/subscriptions/subscription/").content.decode()
    )


# 4. The subscription page lists its instances.


def test_the_subscription_page_lists_its_instance(activated):
    instance, _ = activated
    page = as_role("viewer").get(f"/admin/subscriptions/subscription/{instance.subscription_id}/change/")
    html = page.content.decode()
    assert f'data-instance="{instance.instance_identifier}"' in html
    assert instance.hostname in html and instance.gitlab_version in html
    assert f"/admin/subscriptions/instance/{instance.pk}/change/" in html
    lonely = SubscriptionFactory()
    html = as_role("viewer").get(f"/admin/subscriptions/subscription/{lonely.pk}/change/").content.decode()
    assert "No instance is bound to this subscription" in html


# 3. An add-on can be suspended and resumed: one rule in memory and in the database, and the sync follows it.


def test_a_suspended_purchase_is_inactive_in_memory_and_in_the_database_alike():
    from subscriptions.models import AddOnPurchase as Purchase

    start, end = dt.date(2030, 1, 1), dt.date(2030, 7, 1)
    one = dt.timedelta(days=1)
    for cancelled in (False, True):
        for suspended in (False, True):
            purchase = AddOnPurchaseFactory(
                started_on=start, expires_on=end, subscription=SubscriptionFactory(starts_on=start, expires_on=end)
            )
            if suspended:
                services.add_on_purchase_set_suspended(purchase, True)
            if cancelled:
                services.add_on_purchase_cancel(purchase)
            held = Subscription.objects.prefetch_related("add_on_purchases").get(pk=purchase.subscription_id)
            (in_memory,) = held.add_on_purchases.all()  # as a cached sync state holds it
            for day in (start - one, start, end - one, end, end + one):
                in_database = Purchase.objects.filter(pk=purchase.pk).active_on(day).exists()
                assert in_memory.is_active_on(day) == in_database, (cancelled, suspended, day)
                assert in_database == (not cancelled and not suspended and start <= day < end)


def test_suspending_an_add_on_drops_its_scopes_and_seats_until_it_is_resumed(client, activated):
    from tests.helpers import sync
    from tests.issuer.test_cache_forgery import token_of

    instance, key = activated
    purchase = instance.subscription.add_on_purchases.get()
    _, body = sync(client, key)  # caches the sync state with the add-on active
    with_it = set(token_of(body)["scopes"])
    assert "troubleshoot_job" in with_it
    services.add_on_purchase_set_suspended(purchase, True)
    _, body = sync(client, key)
    assert "troubleshoot_job" not in set(token_of(body)["scopes"])
    from subscriptions.selectors import instance_entitlements

    instance.refresh_from_db()
    assert instance_entitlements(instance).duo_seat_count == 0
    services.add_on_purchase_set_suspended(purchase, False)
    _, body = sync(client, key)
    assert set(token_of(body)["scopes"]) == with_it
    instance.refresh_from_db()
    assert instance_entitlements(instance).duo_seat_count == purchase.quantity


def test_billing_suspends_and_resumes_an_add_on_from_the_list_and_the_api():
    purchase = AddOnPurchaseFactory()
    url = "/admin/subscriptions/addonpurchase/"
    confirmed = {"action": "suspend", "_selected_action": [purchase.pk], "apply": "1", "reason": "disputed invoice"}
    as_role("support").post(url, confirmed)
    assert not AddOnPurchase.objects.get(pk=purchase.pk).suspended  # support may not
    billing = as_role("billing")
    billing.post(url, confirmed)
    assert AddOnPurchase.objects.get(pk=purchase.pk).suspended
    assert (
        '<td class="field-suspended_word">suspended</td>'
        in billing.get(url, {"suspended__exact": "1"}).content.decode()
    )
    api = APIClient()
    api.force_authenticate(user_in("billing"))
    answer = api.post(f"/api/v1/admin/add_on_purchases/{purchase.pk}/suspend/", {"suspended": False}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["suspended"] is False and answer.json()["active"] is True
    assert not AddOnPurchase.objects.get(pk=purchase.pk).suspended
