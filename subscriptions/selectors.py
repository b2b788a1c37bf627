"""Reads: who an instance is, what it is entitled to, and what the back office lists."""

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass

import orjson
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from subscriptions.license_keys import license_key_digest
from subscriptions.models import AddOnPurchase, Instance, SeatReport, Subscription
from unit_primitives.catalog import get_catalog
from unit_primitives.scopes import Grant, granted_scopes

DUO_SEAT_ADD_ONS = ("duo_pro", "duo_enterprise")


def instance_by_license_key(license_key: str | None, *, with_purchases: bool = False) -> Instance | None:
    """The bound instance holding `license_key`, or None: the same answer for an unknown and a wrong key.

    `with_purchases` prefetches the subscription's add-on purchases, so `instance_entitlements` needs no query.
    """
    if not license_key or len(license_key) > 256:
        return None
    digest = license_key_digest(license_key)
    instances = Instance.objects.select_related("subscription").filter(
        license_key_digest=digest, subscription__isnull=False
    )
    if with_purchases:
        instances = instances.prefetch_related("subscription__add_on_purchases")
    instance = instances.first()
    if instance is None or not hmac.compare_digest(instance.license_key_digest, digest):
        return None
    return instance


def add_on_purchases_active(subscription: Subscription, day: dt.date):
    return subscription.add_on_purchases.filter(
        started_on__lte=day, expires_on__gt=day, cancelled_at__isnull=True
    ).order_by("add_on", "id")


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
    rows = AddOnPurchase.objects.filter(
        subscription_id__in=subscription_ids, started_on__lte=day, expires_on__gt=day, cancelled_at__isnull=True
    ).values_list("subscription_id", "add_on", "quantity")
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


def seat_reports_latest_with_overage():
    """The newest report of each instance, where it shows more seats assigned than purchased."""
    newest_of_instance = (
        SeatReport.objects.filter(instance_id=OuterRef("instance_id")).order_by("-reported_at", "-id").values("id")[:1]
    )
    return (
        SeatReport.objects.select_related("instance__subscription__customer")
        .filter(id=Subquery(newest_of_instance), has_overage=True)
        .order_by("-reported_at")
    )


def subscriptions_expiring(within_days: int = 30, today: dt.date | None = None):
    today = today or timezone.now().date()
    horizon = today + dt.timedelta(days=within_days)
    return Subscription.objects.select_related("customer").filter(
        expires_on__gt=today, expires_on__lte=horizon, suspended=False
    )


def add_on_purchases_expiring(within_days: int = 30, today: dt.date | None = None):
    today = today or timezone.now().date()
    horizon = today + dt.timedelta(days=within_days)
    return AddOnPurchase.objects.select_related("subscription__customer").filter(
        Q(cancelled_at__isnull=True), expires_on__gt=today, expires_on__lte=horizon
    )
