"""The quota answer (PROTOCOL §9.2): may this consumer run this billable feature now?

- 403 when the instance is unknown or its subscription does not entitle the asked `event_type` (the catalog's
  mapping from event types to unit primitives or add-ons; an event type it does not know is not entitled);
- 402 when the month's pools are used up and overage is not allowed, or when the user's cap is reached;
- 200 otherwise.

The answer carries `Cache-Control: max-age`, a function of how much of the month's pools is used (3600 s below
50%, 300 s below 90%, 30 s above or when refused), never past the month's turn, so callers ask again in time.
A user is the GitLab user id (`user_id`, which both the gateway and GitLab Rails send), else the gateway's
anonymised `global_user_id`: the events' `user_key` follows the same rule (`subject`, the same id, else
`global_user_id`), and GitLab reads usage back by that id.

The month's figures come from a cached balance: plain data sealed with an HMAC (config/signed_cache.py), keyed by
the subscription's ledger generation, which every stored event, grant and cap change moves, so an ask never reads
a stale balance past the next change. A balance is computed from the daily rollup (`DailyUsage`, today's row kept
current by the same statement that stores each batch), never by summing a month of events."""

import datetime as dt
import hashlib
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.core.cache import cache
from django.db.models import Sum

from config.signed_cache import signed_cache_get, signed_cache_set
from credits.models import CreditAccount, DailyUsage, UserCapOverride
from credits.selectors import month_after, month_of, month_start, month_statement
from subscriptions.models import Instance, Subscription
from subscriptions.selectors import instance_entitlements
from unit_primitives.credits import get_credit_catalog

BALANCE_SECONDS = 3600  # a cached balance lives at most this long even when nothing moves


@dataclass(frozen=True)
class QuotaAnswer:
    status: int  # 200, 402 or 403
    max_age: int
    reason: str


def ledger_generation_key(subscription_id: int) -> str:
    return f"credits:generation:{subscription_id}"


def ledger_moved(subscription_ids) -> None:
    """Every cached balance of these subscriptions is stale from now on (called after the change commits): each
    gets a new generation, a fresh number rather than a count, so a whole batch's subscriptions are moved in one
    round trip (set_many) instead of two a subscription."""
    generation = time.time_ns()
    keys = {ledger_generation_key(subscription_id): generation for subscription_id in set(subscription_ids)}
    if keys:
        cache.set_many(keys, None)


def _generation(subscription_id: int) -> int:
    value = cache.get(ledger_generation_key(subscription_id))
    return value if isinstance(value, int) else 0


def _balance(ref: "InstanceRef", month: dt.date, user_key: str) -> dict:
    """{granted, used, overage_allowed, user_used, user_cap} for the month, from the cache or computed once."""
    generation = _generation(ref.subscription_id)
    key = f"credits:balance:{ref.subscription_id}:{month.isoformat()}:{user_key}"
    cached = signed_cache_get(key, generation=generation)
    if isinstance(cached, dict):
        return {name: Decimal(value) if isinstance(value, str) else value for name, value in cached.items()}
    subscription = ref.subscription()
    statement = month_statement(subscription, month)
    account = CreditAccount.objects.filter(subscription=subscription).first()
    override = (
        UserCapOverride.objects.filter(subscription=subscription, user_key=user_key).first() if user_key else None
    )
    cap = override.cap if override else (account.user_cap if account else None)
    user_used = Decimal(0)
    if user_key and cap is not None:
        total = DailyUsage.objects.filter(subscription=subscription, month=month, user_key=user_key).aggregate(
            total=Sum("credits")
        )["total"]
        user_used = Decimal(total or 0)
    balance = {
        "granted": statement.granted,
        "used": statement.usage,
        "overage_allowed": statement.overage_allowed,
        "user_used": user_used,
        "user_cap": cap,
    }
    plain = {name: str(value) if isinstance(value, Decimal) else value for name, value in balance.items()}
    signed_cache_set(key, plain, BALANCE_SECONDS, generation=generation)
    return balance


def _max_age(fraction: float, now: dt.datetime, refused: bool) -> int:
    age = 30 if refused or fraction >= 0.9 else 300 if fraction >= 0.5 else 3600
    until_turn = int((month_start(month_after(month_of(now))) - now).total_seconds())
    return max(1, min(age, until_turn))


ENTITLEMENT_SECONDS = 300  # as long as callers keep a 403: a change of add-ons shows within it


def _entitled(instance: "InstanceRef", event_type: str, now: dt.datetime) -> bool:
    """Whether the instance's subscription entitles `event_type`, kept sealed in the cache for ENTITLEMENT_SECONDS
    per instance and event type (computing the scopes costs more than the rest of the answer)."""
    entry = get_credit_catalog().event_types.get(event_type)
    if entry is None:
        return False
    key = f"credits:entitled:{instance.pk}:{event_type}"
    cached = signed_cache_get(key)
    if isinstance(cached, bool):
        return cached
    entitled = _entitled_now(instance.instance(), entry, now)
    signed_cache_set(key, entitled, ENTITLEMENT_SECONDS)
    return entitled


def _entitled_now(instance: Instance, entry, now: dt.datetime) -> bool:
    entitlements = instance_entitlements(instance, now)
    if not entitlements.access:
        return False
    if entry.unit_primitive:
        return entry.unit_primitive in entitlements.grant.scopes
    return entry.add_on in {name for name, _ in entitlements.active_add_ons}


@dataclass(frozen=True)
class InstanceRef:
    """A bound instance as the quota check names it: its row and its subscription's, loaded only on a cache miss."""

    pk: int
    subscription_id: int

    def instance(self) -> Instance:
        return Instance.objects.select_related("subscription").get(pk=self.pk)

    def subscription(self) -> Subscription:
        return Subscription.objects.get(pk=self.subscription_id)


BINDING_SECONDS = 60  # how long a caller's instance id stays mapped to its row in the cache (a release shows within)


def instance_for_quota(instance_id: str, unique_instance_id: str) -> InstanceRef | None:
    """The bound instance a caller names: by its instance UUID, else by GitLab's anonymous unique instance id; the
    mapping kept sealed in the cache for BINDING_SECONDS."""
    named = hashlib.sha256("\n".join((instance_id, unique_instance_id)).encode()).hexdigest()
    key = f"credits:binding:{named}"
    cached = signed_cache_get(key)
    if isinstance(cached, list) and len(cached) == 2:
        return InstanceRef(*cached) if cached[0] else None
    found = None
    if instance_id:
        try:
            found = (
                Instance.objects.filter(instance_identifier=uuid.UUID(instance_id))
                .values_list("pk", "subscription_id")
                .first()
            )
        except ValueError:
            found = None
    if found is None and unique_instance_id:
        found = (
            Instance.objects.filter(unique_instance_id=unique_instance_id).values_list("pk", "subscription_id").first()
        )
    bound = found if found is not None and found[1] else None
    signed_cache_set(key, list(bound) if bound else [0, 0], BINDING_SECONDS)
    return InstanceRef(*bound) if bound else None


def quota_answer(instance: InstanceRef | None, *, event_type: str, user_key: str, now: dt.datetime) -> QuotaAnswer:
    if instance is None:
        return QuotaAnswer(403, 30, "unknown instance")
    if not _entitled(instance, event_type, now):
        return QuotaAnswer(403, 300, f"not entitled to {event_type or 'this feature'}")
    balance = _balance(instance, month_of(now), user_key)
    granted, used = balance["granted"], balance["used"]
    fraction = float(used / granted) if granted > 0 else (1.0 if used > 0 else 0.0)
    if balance["user_cap"] is not None and balance["user_used"] >= balance["user_cap"]:
        return QuotaAnswer(402, _max_age(fraction, now, True), "the user's monthly cap is reached")
    if used >= granted and not balance["overage_allowed"]:
        return QuotaAnswer(402, _max_age(fraction, now, True), "credits are used up and overage is not allowed")
    return QuotaAnswer(200, _max_age(fraction, now, False), "allowed")
