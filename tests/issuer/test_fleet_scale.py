"""Lists and searches cost the page, not the fleet: query counts that do not grow with the fleet, searches
dispatched by shape, estimated counts, the dashboard's rollups, the refresh plan computed by the database."""

import uuid

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config import pagination
from issuer.fleet.selectors import fleet_daily_series, fleet_summary
from issuer.fleet.services import fleet_rollup_run
from issuer.keys.services import signing_key_ensure_active
from issuer.models import FleetCount, IssuedToken
from issuer.tokens.refresh import token_refresh_plan
from subscriptions.models import Instance
from subscriptions.services import instance_activate, seat_report_record
from tests.factories import AddOnPurchaseFactory, CustomerFactory, SubscriptionFactory
from tests.helpers import analyze_as_owner, last_sync_set, mint_token, role
from tests.requirements import need

pytestmark = pytest.mark.django_db

PAGES = [
    "/admin/",
    "/admin/subscriptions/instance/",
    "/admin/subscriptions/instance/?q=gitlab-1.example",
    "/admin/subscriptions/customer/",
    "/admin/subscriptions/customer/?q=Fleet",
    "/admin/subscriptions/subscription/",
    "/admin/subscriptions/subscription/?q=Fleet",
    "/admin/subscriptions/addonpurchase/",
    "/admin/subscriptions/seatreport/",
    "/admin/issuer/issuedtoken/",
    "/admin/issuer/issuedtoken/?reason=sync",
    "/admin/audit/auditevent/",
    "/admin/keys/",
    "/api/v1/admin/customers/",
    "/api/v1/admin/subscriptions/",
    "/api/v1/admin/add_on_purchases/",
    "/api/v1/admin/instances/",
    "/api/v1/admin/signing_keys/",
    "/api/v1/admin/audit-events",
]


def _grow_fleet(count: int, start: int = 0) -> None:
    signing_key_ensure_active()
    now = timezone.now()
    for n in range(start, start + count):
        subscription = AddOnPurchaseFactory(
            subscription=SubscriptionFactory(customer=CustomerFactory(name=f"Fleet {n}"))
        )
        activation = instance_activate(
            activation_code=subscription.subscription.activation_code,
            instance_identifier=str(uuid.uuid4()),
            hostname=f"gitlab-{n}.example.test",
            gitlab_version="19.0.2",
        )
        for _ in range(2):
            mint_token(activation.instance, reason="sync")
        seat_report_record(
            instance=activation.instance,
            reported_at=now,
            gitlab_version="19.0.2",
            billable_users=10,
            max_historical_users=10,
        )


def _queries(client) -> dict[str, int]:
    counts = {}
    for path in PAGES:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(path)
        assert response.status_code == 200, path
        counts[path] = len(queries)
    return counts


def test_no_page_or_api_list_makes_more_queries_for_a_larger_fleet(client, admin_user):
    client.force_login(admin_user)
    _grow_fleet(3)
    fleet_rollup_run()
    small = _queries(client)
    _grow_fleet(30, start=3)
    fleet_rollup_run()
    large = _queries(client)
    assert large == small
    assert max(small.values()) <= 17, small  # the dashboard: 16, and one for its lapsed add-ons (issue 27)


def test_searches_go_by_shape_to_one_exact_lookup(client, admin_user):
    _grow_fleet(3)
    client.force_login(admin_user)
    instance = Instance.objects.get(hostname="gitlab-1.example.test")
    token = IssuedToken.objects.filter(instance=instance).first()

    def listed(path):
        return client.get(path).context["cl"].result_count

    assert listed(f"/admin/issuer/issuedtoken/?q={token.jti}") == 1
    assert listed(f"/admin/issuer/issuedtoken/?q={instance.instance_identifier}") == 2
    assert listed(f"/admin/issuer/issuedtoken/?q={token.kid}") == IssuedToken.objects.count()
    assert listed("/admin/issuer/issuedtoken/?q=not a token") == 0
    assert listed(f"/admin/subscriptions/instance/?q={instance.instance_identifier}") == 1
    assert listed(f"/admin/subscriptions/instance/?q={instance.license_key_prefix}") == 1
    assert listed("/admin/subscriptions/instance/?q=GITLAB-1.EXAMPLE") == 1
    assert listed("/admin/subscriptions/instance/?q=Fleet 2") == 1  # by its customer's name
    purchase = instance.subscription.add_on_purchases.get()
    assert listed(f"/admin/subscriptions/addonpurchase/?q={purchase.purchase_id}") == 1
    code = instance.subscription.activation_code
    assert listed(f"/admin/subscriptions/subscription/?q={code}") == 1


def test_a_viewer_cannot_find_a_subscription_by_its_activation_code(client):
    _grow_fleet(1)
    viewer = User.objects.create_user("vera", password="pw-vera-123", is_staff=True)
    viewer.groups.add(role("viewer"))
    client.force_login(viewer)
    code = Instance.objects.get().subscription.activation_code
    assert client.get(f"/admin/subscriptions/subscription/?q={code}").context["cl"].result_count == 0


@pytest.mark.django_db(transaction=True)  # committed rows: ANALYZE may run on the owner's connection
def test_counts_above_the_threshold_are_the_planners_estimate(client, monkeypatch, admin_user):
    need("postgresql")  # the planner's estimate is PostgreSQL's
    _grow_fleet(3)
    analyze_as_owner("issuer_issuedtoken")
    monkeypatch.setattr(pagination, "EXACT_COUNT_BELOW", 1)
    client.force_login(admin_user)
    changelist = client.get("/admin/issuer/issuedtoken/").context["cl"]
    assert changelist.paginator.estimated
    assert changelist.result_count == pagination.planner_estimate(IssuedToken.objects.all())


def test_the_dashboard_reads_the_rollup_and_says_how_fresh_it_is(client, admin_user):
    _grow_fleet(2)
    client.force_login(admin_user)
    assert "the rollup job has not run yet" in client.get("/admin/").content.decode()
    at = timezone.now()
    fleet_rollup_run(at=at)
    _grow_fleet(1, start=2)  # not counted until the next run
    summary = fleet_summary(at)
    assert summary.computed_at == at and summary.customers == 2 and summary.tokens_issued_24h == 4
    page = client.get("/admin/").content.decode()
    assert 'data-metric="customers">2<' in page and "by the rollup job" in page
    last_sync_set(Instance.objects.all(), timezone.now())
    fleet_rollup_run()
    assert fleet_summary(timezone.now()).customers == 3
    assert FleetCount.objects.get(metric="instances_by_version:19.0").value == 3
    assert fleet_daily_series("tokens_issued", timezone.now(), days=3)[-1][1] == 6


def test_the_rollup_job_is_idempotent(db):
    _grow_fleet(2)
    at = timezone.now()
    written = fleet_rollup_run(at=at)
    assert fleet_rollup_run(at=at) == written
    assert FleetCount.objects.count() == written


def test_the_refresh_plan_is_ranges_of_the_refreshable_ids():
    _grow_fleet(7)
    Instance.objects.filter(pk=Instance.objects.order_by("pk")[2].pk).update(suspended=True)
    ids = list(Instance.objects.filter(suspended=False).order_by("pk").values_list("pk", flat=True))
    assert token_refresh_plan(chunk_size=3) == [(ids[0], ids[2]), (ids[3], ids[5])]
    assert token_refresh_plan(chunk_size=100) == [(ids[0], ids[-1])]
