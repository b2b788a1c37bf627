"""Reads: who an instance is, what it is entitled to, and what the back office lists."""

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass

import orjson
from django.db.models import F, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from subscriptions.license_keys import license_key_digest, license_key_plausible
from subscriptions.models import AddOnPurchase, Customer, Instance, InstanceIdSighting, SeatReport, Subscription
from unit_primitives.catalog import get_catalog
from unit_primitives.scopes import Grant, granted_scopes

DUO_SEAT_ADD_ONS = ("duo_pro", "duo_enterprise")
# How far back a foreign instance id counts as a clone (the instance page and the dashboard).
CLONE_WINDOW = dt.timedelta(days=7)
# GitLab treats its Cloud Connector access data as stale after 3 days (its Duo health check says so too).
STALE_AFTER = dt.timedelta(days=3)
SYNCED_WITHIN = dt.timedelta(hours=24)
# The dashboard's instance counts, each a filter of the instance list its card links to (`instances_in_state`).
INSTANCE_STATES = {
    "synced_24h": "synced in the last 24 hours",
    "stale": "stale (no sync for 3 days)",
    "cloned": "license key used from another instance id (7 days)",
}


def instances_in_state(instances: QuerySet, state: str, at: dt.datetime) -> QuerySet:
    """Bound instances in one of INSTANCE_STATES at `at`: the one rule behind the dashboard's count and its list."""
    bound = instances.filter(subscription__isnull=False)
    if state == "synced_24h":
        return bound.filter(last_sync__at__gte=at - SYNCED_WITHIN)
    if state == "stale":  # no sync for 3 days, or never (activated earlier)
        cutoff = at - STALE_AFTER
        return bound.filter(Q(last_sync__at__lt=cutoff) | Q(last_sync__at__isnull=True, activated_at__lt=cutoff))
    if state == "cloned":
        seen = InstanceIdSighting.objects.filter(last_seen_at__gte=at - CLONE_WINDOW).values("instance_id")
        return instances.filter(pk__in=seen)
    raise ValueError(f"Unknown instance state {state!r}; known: {', '.join(INSTANCE_STATES)}")


def instance_by_license_key(license_key: str | None, *, with_purchases: bool = False) -> Instance | None:
    """The bound instance holding `license_key`, or None: the same answer for an unknown and a wrong key.

    `with_purchases` prefetches the subscription's add-on purchases, so `instance_entitlements` needs no query.
    """
    if not license_key_plausible(license_key):
        return None
    digest = license_key_digest(license_key)
    instances = Instance.objects.select_related("subscription", "last_sync").filter(
        license_key_digest=digest, subscription__isnull=False
    )
    if with_purchases:
        instances = instances.prefetch_related("subscription__add_on_purchases")
    instance = instances.first()
    if instance is None or not hmac.compare_digest(instance.license_key_digest, digest):
        return None
    return instance


def add_on_purchases_active(subscription: Subscription, day: dt.date):
    return subscription.add_on_purchases.active_on(day).order_by("add_on", "id")


def _active_purchases(subscription: Subscription, day: dt.date):
    """Uses purchases prefetched by a batch (the refresh job) when there are any, else one query."""
    prefetched = getattr(subscription, "_prefetched_objects_cache", {}).get("add_on_purchases")
    if prefetched is not None:
        return [purchase for purchase in prefetched if purchase.is_active_on(day)]
    return add_on_purchases_active(subscription, day)


@dataclass(frozen=True)
class Entitlements:
    """Everything the scopes of an instance's token depend on, and the grant they produce."""

    instance_identifier: str
    access: bool  # False: subscription ended/not started/suspended, instance suspended or unbound
    license_type: str | None
    active_add_ons: tuple[tuple[str, int], ...]  # (add-on, quantity), sorted
    duo_seat_count: int
    gitlab_version: str
    grant: Grant
    fingerprint: str


def add_on_quantities_active(subscription_ids: list[int], day: dt.date) -> dict[int, list[tuple[str, int]]]:
    """(add-on, quantity) of the purchases active on `day`, per subscription: one query for a whole batch."""
    found: dict[int, list[tuple[str, int]]] = {}
    rows = (
        AddOnPurchase.objects.active_on(day)
        .filter(subscription_id__any_of=subscription_ids)
        .values_list("subscription_id", "add_on", "quantity")
    )
    for subscription_id, add_on, quantity in rows:
        found.setdefault(subscription_id, []).append((add_on, quantity))
    return found


def instance_entitlements(
    instance: Instance, at: dt.datetime | None = None, *, active_add_ons: list[tuple[str, int]] | None = None
) -> Entitlements:
    """`active_add_ons`: the (add-on, quantity) pairs active at `at`, when a batch has read them already
    (`add_on_quantities_active`); otherwise prefetched purchases or one query."""
    at = at or timezone.now()
    day = at.astimezone(dt.UTC).date()
    subscription = instance.subscription
    access = bool(subscription and not instance.suspended and subscription.is_active_on(day))
    if access:
        purchases = (
            active_add_ons
            if active_add_ons is not None
            else [(p.add_on, p.quantity) for p in _active_purchases(subscription, day)]
        )
        license_type = subscription.license_type
    else:
        purchases, license_type = [], None
    active_add_ons = tuple(sorted(purchases))
    duo_seat_count = max((qty for name, qty in active_add_ons if name in DUO_SEAT_ADD_ONS), default=0)
    grant = (
        granted_scopes(
            license_type=license_type,
            active_add_ons=[name for name, _ in active_add_ons],
            gitlab_version=instance.gitlab_version or None,
            at=at,
        )
        if access
        else Grant(scopes=(), audiences=())
    )
    fingerprint_source = orjson.dumps(
        [
            str(instance.instance_identifier),
            instance.subscription_id,  # a token minted for one customer's subscription is never another's
            access,
            license_type,
            active_add_ons,
            duo_seat_count,
            instance.gitlab_version,
            grant.scopes,
            grant.audiences,
            get_catalog().digest,
        ]
    )
    return Entitlements(
        instance_identifier=str(instance.instance_identifier),
        access=access,
        license_type=license_type,
        active_add_ons=active_add_ons,
        duo_seat_count=duo_seat_count,
        gitlab_version=instance.gitlab_version,
        grant=grant,
        fingerprint=hashlib.sha256(fingerprint_source).hexdigest()[:32],
    )


# "Newest" is the report we received last: the instance's own timestamp is its word, and one report dated in the
# future must not hide every later one.
SEAT_REPORT_NEWEST_FIRST = ("-received_at", "-id")


def _newest_seat_report_of_instance():
    return SeatReport.objects.filter(instance_id=OuterRef("instance_id")).order_by(*SEAT_REPORT_NEWEST_FIRST)


def seat_reports_latest():
    """The newest report of each instance (by arrival)."""
    return SeatReport.objects.filter(id=Subquery(_newest_seat_report_of_instance().values("id")[:1]))


def seat_reports_latest_with_overage():
    """The newest report of each instance (by arrival), where it shows more seats assigned than we sold."""
    newest_of_instance = _newest_seat_report_of_instance().values("id")[:1]
    return (
        SeatReport.objects.select_related("instance__subscription__customer")
        .filter(id=Subquery(newest_of_instance), has_overage=True)
        .order_by("-reported_at")
    )


def add_on_purchases_renewing_with(subscription: Subscription) -> tuple[list[AddOnPurchase], list[AddOnPurchase]]:
    """A renewal's proposal: (the purchases that move with the subscription by default: those that ended, or will
    end, on its current end date; every other purchase, to choose). Cancelled purchases are in neither."""
    purchases = subscription.add_on_purchases.filter(cancelled_at__isnull=True).order_by("expires_on", "add_on", "id")
    moving = [purchase for purchase in purchases if purchase.expires_on == subscription.expires_on]
    return moving, [purchase for purchase in purchases if purchase.expires_on != subscription.expires_on]


def add_on_purchases_ending_early(subscription: Subscription) -> list[AddOnPurchase]:
    """Purchases that end before their subscription does (a renewal that left them behind, or a sale so made):
    the subscription's page says so."""
    return list(
        subscription.add_on_purchases.filter(
            cancelled_at__isnull=True, expires_on__lt=subscription.expires_on
        ).order_by("expires_on", "id")
    )


# A running subscription is "expiring" this many days before its end (the dashboard's horizon too).
EXPIRING_WITHIN = dt.timedelta(days=30)
SUBSCRIPTION_STATUSES = ("upcoming", "active", "expiring", "expired", "suspended")


def subscription_status(subscription: Subscription, today: dt.date) -> str:
    """One word for where a subscription stands on `today`; `subscriptions_in_status` is the same rule as a query."""
    if subscription.suspended:
        return "suspended"
    if today < subscription.starts_on:
        return "upcoming"
    if subscription.expires_on <= today:
        return "expired"
    return "expiring" if subscription.expires_on <= today + EXPIRING_WITHIN else "active"


def subscriptions_in_status(subscriptions: QuerySet, status: str, today: dt.date) -> QuerySet:
    horizon = today + EXPIRING_WITHIN
    running = Q(suspended=False, starts_on__lte=today)
    rules = {
        "suspended": Q(suspended=True),
        "upcoming": Q(suspended=False, starts_on__gt=today),
        "expired": Q(suspended=False, expires_on__lte=today),
        "expiring": running & Q(expires_on__gt=today, expires_on__lte=horizon),
        "active": running & Q(expires_on__gt=horizon),
    }
    return subscriptions.filter(rules[status])


def subscriptions_expiring(within_days: int = 30, today: dt.date | None = None):
    today = today or timezone.now().date()
    horizon = today + dt.timedelta(days=within_days)
    return (
        Subscription.objects.select_related("customer")
        .filter(expires_on__gt=today, expires_on__lte=horizon, suspended=False)
        .order_by("expires_on", "id")  # the soonest first, straight off the expires_on index
    )


def add_on_purchases_expiring(within_days: int = 30, today: dt.date | None = None):
    today = today or timezone.now().date()
    horizon = today + dt.timedelta(days=within_days)
    return (
        AddOnPurchase.objects.select_related("subscription__customer")
        .filter(Q(cancelled_at__isnull=True), expires_on__gt=today, expires_on__lte=horizon)
        .order_by("expires_on", "id")  # the soonest first, straight off the expires_on index
    )


def add_on_purchases_lapsed(today: dt.date | None = None):
    """Purchases that have ended while their subscription runs on (not suspended, not cancelled): what a renewal
    that left its add-ons behind looks like (the instance syncs without their scopes). The latest lapse first."""
    today = today or timezone.now().date()
    return (
        AddOnPurchase.objects.select_related("subscription__customer")
        .filter(
            cancelled_at__isnull=True,
            expires_on__lte=today,
            expires_on__lt=F("subscription__expires_on"),
            subscription__suspended=False,
            subscription__starts_on__lte=today,
            subscription__expires_on__gt=today,
        )
        .order_by("-expires_on", "-id")
    )


def subscriptions_future(customer_id: int | None, today: dt.date | None = None) -> list[dict]:
    """The customer's subscriptions that start after today, as GitLab lists them (PROTOCOL §2.1 and §6), with
    snake_case keys; the GraphQL door turns them to camelCase. `name` is the customer's name: we keep no contact
    person's name, and GitLab shows it as the licensee."""
    if customer_id is None:
        return []
    today = today or timezone.now().date()
    upcoming = (
        Subscription.objects.filter(customer_id=customer_id, starts_on__gt=today, suspended=False)
        .select_related("customer")
        .order_by("starts_on", "id")
    )
    return [
        {
            "cloud_license_enabled": True,
            "offline_cloud_license_enabled": False,
            "plan": subscription.license_type,
            "company": subscription.customer.name,
            "email": subscription.customer.contact_email,
            "name": subscription.customer.name,
            "starts_at": subscription.starts_on.isoformat(),
            "expires_at": subscription.expires_on.isoformat(),
            "users_in_license_count": subscription.seats,
        }
        for subscription in upcoming
    ]


def instance_ids_seen(instance: Instance, now: dt.datetime, within: dt.timedelta = CLONE_WINDOW) -> list[dict]:
    """The X-Gitlab-Instance-Ids this instance's license key came with lately: its own (when it sent one) and
    any foreign one (a clone). More than one means newer AI gateways refuse some of its callers."""
    since = now - within
    seen = []
    if instance.last_seen_instance_id and instance.last_sync_at and instance.last_sync_at >= since:
        seen.append({"instance_id": instance.last_seen_instance_id, "last_seen_at": instance.last_sync_at, "own": True})
    for sighting in instance.foreign_id_sightings.filter(last_seen_at__gte=since).order_by("-last_seen_at"):
        seen.append({"instance_id": sighting.seen_instance_id, "last_seen_at": sighting.last_seen_at, "own": False})
    return seen


def instances_cloned_count(now: dt.datetime, within: dt.timedelta = CLONE_WINDOW) -> int:
    """Instances whose license key came with a foreign instance id lately (the dashboard's count)."""
    return InstanceIdSighting.objects.filter(last_seen_at__gte=now - within).values("instance_id").distinct().count()


def customers_named(term: str) -> QuerySet:
    """Customers whose name contains `term` (case-insensitive): on PostgreSQL a trigram index serves it."""
    return Customer.objects.filter(name__icontains=term).order_by().values("pk")


def instances_matching_text(instances: QuerySet, term: str) -> QuerySet:
    """Instances whose host name or customer's name contains `term`: the union of two trigram-indexed searches,
    as ids. (An OR across the join makes PostgreSQL walk the instances in list order looking for rare matches.)"""
    by_host = Instance.objects.filter(hostname__icontains=term).order_by().values("pk")
    by_customer = Instance.objects.filter(subscription__customer__in=customers_named(term)).order_by().values("pk")
    return instances.filter(pk__in=by_host.union(by_customer))


# Rows per section of a customer's page; each section links to its full, filtered list.
CUSTOMER_SECTION_ROWS = 20


@dataclass(frozen=True)
class Section:
    """The newest rows of one kind (at most CUSTOMER_SECTION_ROWS) and whether there are more than shown."""

    rows: list
    more: bool


def _section(queryset: QuerySet) -> Section:
    rows = list(queryset[: CUSTOMER_SECTION_ROWS + 1])
    return Section(rows=rows[:CUSTOMER_SECTION_ROWS], more=len(rows) > CUSTOMER_SECTION_ROWS)


def customer_overview(customer: Customer, today: dt.date) -> dict[str, Section]:
    """What a customer has and where it is used: their subscriptions (with status), add-on purchases, instances (the
    latest synced first) and the latest seat reports of the instances shown. Each section is one bounded query,
    whatever the size of the fleet or of the customer."""
    subscriptions = _section(Subscription.objects.filter(customer=customer).order_by("-expires_on", "-id"))
    for subscription in subscriptions.rows:
        subscription.status = subscription_status(subscription, today)
    instances = _section(
        Instance.objects.filter(subscription__customer=customer)
        .select_related("subscription", "last_sync")
        .order_by(F("last_sync__at").desc(nulls_last=True), "-id")
    )
    return {
        "subscriptions": subscriptions,
        "add_on_purchases": _section(
            AddOnPurchase.objects.filter(subscription__customer=customer)
            .select_related("subscription")
            .order_by("-expires_on", "-id")
        ),
        "instances": instances,
        "seat_reports": _section(
            SeatReport.objects.filter(instance_id__in=[instance.pk for instance in instances.rows])
            .select_related("instance")
            .order_by(*SEAT_REPORT_NEWEST_FIRST)
        ),
    }
