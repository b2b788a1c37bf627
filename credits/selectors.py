"""Reads of the credits ledger. A month's statement is always recomputed from the grants and usage entries, and its
attribution to pools comes from the month's totals in the documented order (so it does not depend on the order in
which events arrived):

1. the plan's included credits (per seat and month, `unit_primitives/catalog/credits/plans`), funded by the seats
   the subscription had at the first moment of the month (read back from the audit trail; a subscription created
   later in the month by the seats it was created with);
2. the monthly waiver;
3. adjustments of that month (a positive one is a pool; a negative one is charged like usage);
4. the purchased monthly commitment;
5. one-time credits active in the month, those expiring first drawn first (what earlier months left of them);
6. overage: past every pool, allowed or not per subscription (`CreditAccount.overage_allowed`).
"""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Q, Sum

from audit.models import AuditEvent
from credits.models import CreditAccount, CreditGrant, DailyUsage, UsageEvent
from subscriptions.models import Subscription
from unit_primitives.credits import get_credit_catalog

ZERO = Decimal("0")
MICRO = Decimal("0.000001")  # amounts are kept to the micro-credit
MONTHLY_ORDER = (CreditGrant.Kind.INCLUDED, CreditGrant.Kind.WAIVER, CreditGrant.Kind.ADJUSTMENT)
Kind = CreditGrant.Kind


def month_of(moment: dt.datetime | dt.date) -> dt.date:
    day = moment.astimezone(dt.UTC).date() if isinstance(moment, dt.datetime) else moment
    return day.replace(day=1)


def month_after(month: dt.date) -> dt.date:
    return (month + dt.timedelta(days=32)).replace(day=1)


def month_start(month: dt.date) -> dt.datetime:
    return dt.datetime(month.year, month.month, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class PoolLine:
    kind: str
    label: str
    granted: Decimal
    used: Decimal
    expires_on: dt.date | None = None

    @property
    def remaining(self) -> Decimal:
        return self.granted - self.used


@dataclass(frozen=True)
class MonthStatement:
    subscription_id: int
    month: dt.date
    pools: tuple[PoolLine, ...]
    usage: Decimal  # priced usage of the month, in credits (negative adjustments included)
    overage_used: Decimal
    overage_allowed: bool
    events: int
    unpriced_events: int  # stored and flagged: no price in the catalog, so counted in no pool
    included_seats: int = 0
    daily: tuple[tuple[dt.date, Decimal], ...] = field(default=())

    @property
    def granted(self) -> Decimal:
        return sum((pool.granted for pool in self.pools), ZERO)

    @property
    def remaining(self) -> Decimal:
        return max(self.granted - self.usage, ZERO)

    @property
    def exhausted(self) -> bool:
        """No credit left in any pool (usage may still go on as overage when that is allowed)."""
        return self.usage >= self.granted

    @property
    def used_fraction(self) -> float:
        return float(self.usage / self.granted) if self.granted > 0 else (1.0 if self.usage > 0 else 0.0)


def seats_at(subscription: Subscription, moment: dt.datetime) -> int:
    """The subscription's seats at `moment`: the value its first seat change after `moment` changed from (the
    audit trail records every change with its before and after), else today's."""
    change = (
        AuditEvent.objects.filter(
            object_type="subscription", object_id=str(subscription.pk), at__gte=moment, changes__has_key="seats"
        )
        .order_by("at", "id")
        .values_list("action", "changes")
        .first()
    )
    if change is None:
        return subscription.seats
    action, changes = change
    before, after = changes["seats"]
    return int(after if action == "subscription.create" or before is None else before)


def included_credits(subscription: Subscription, month: dt.date) -> tuple[Decimal, int]:
    """(credits, seats) the plan includes for `month`: nothing when the subscription runs on no day of it."""
    if not (subscription.starts_on < month_after(month) and subscription.expires_on > month):
        return ZERO, 0
    per_seat = get_credit_catalog().included_per_seat_month.get(subscription.license_type, ZERO)
    seats = seats_at(subscription, max(month_start(month), subscription.created_at))
    return per_seat * seats, seats


def _monthly_pools(subscription: Subscription, month: dt.date, grants) -> tuple[list[PoolLine], Decimal, int]:
    """The month's monthly pools (not yet drawn), and the charge of its negative adjustments, and its seats."""
    stored = next((g for g in grants if g.kind == Kind.INCLUDED and g.month == month), None)
    included, seats = (stored.amount, stored.seats or 0) if stored else included_credits(subscription, month)

    def total(kind):
        return sum((g.amount for g in grants if g.kind == kind and g.month == month), ZERO)

    adjustments = [g.amount for g in grants if g.kind == Kind.ADJUSTMENT and g.month == month]
    pools = [
        (Kind.INCLUDED, included),
        (Kind.WAIVER, total(Kind.WAIVER)),
        (Kind.ADJUSTMENT, sum((a for a in adjustments if a > 0), ZERO)),
        (Kind.COMMITMENT, total(Kind.COMMITMENT)),
    ]
    charge = -sum((a for a in adjustments if a < 0), ZERO)
    lines = [
        PoolLine(kind, Kind(kind).label, amount, ZERO) for kind, amount in pools if amount or kind == Kind.INCLUDED
    ]
    return lines, charge, seats


def _usage_by_month(subscription: Subscription, months: list[dt.date]) -> dict[dt.date, dict]:
    rows = (
        DailyUsage.objects.filter(subscription=subscription, month__in=months)
        .values("month")
        .annotate(spent=Sum("credits"), events=Sum("events"), unpriced=Sum("unpriced"))
    )
    return {row["month"]: row for row in rows}


def _draw(pools: list[PoolLine], amount: Decimal) -> tuple[list[PoolLine], Decimal]:
    """Pools with `amount` drawn from them in order; what is left past the last one."""
    drawn = []
    for pool in pools:
        take = min(max(pool.granted - pool.used, ZERO), amount)
        amount -= take
        drawn.append(PoolLine(pool.kind, pool.label, pool.granted, pool.used + take, pool.expires_on))
    return drawn, amount


def month_statement(subscription: Subscription, month: dt.date) -> MonthStatement:
    grants = list(CreditGrant.objects.filter(subscription=subscription))
    one_time = sorted((g for g in grants if g.kind == Kind.ONE_TIME), key=lambda g: (g.expires_on, g.pk))
    first = min([month_of(g.starts_on) for g in one_time if month_of(g.starts_on) < month], default=month)
    months, cursor = [], first
    while cursor <= month:
        months.append(cursor)
        cursor = month_after(cursor)
    usage = _usage_by_month(subscription, months)
    left = {g.pk: g.amount for g in one_time}  # what each one-time grant still holds, month after month
    for current in months:
        monthly, charge, seats = _monthly_pools(subscription, current, grants)
        row = usage.get(current, {})
        spent = _exact(row.get("spent")) + charge
        monthly, past_monthly = _draw(monthly, spent)
        active = [g for g in one_time if g.starts_on < month_after(current) and g.expires_on > current]
        lines = [PoolLine(Kind.ONE_TIME, "one-time credits", left[g.pk], ZERO, g.expires_on) for g in active]
        lines, overage = _draw(lines, past_monthly)
        for grant, line in zip(active, lines, strict=True):
            left[grant.pk] = line.remaining
    account = CreditAccount.objects.filter(subscription=subscription).first()
    return MonthStatement(
        subscription_id=subscription.pk,
        month=month,
        pools=tuple(monthly + lines),
        usage=spent,
        overage_used=overage,
        overage_allowed=bool(account and account.overage_allowed),
        events=row.get("events") or 0,
        unpriced_events=row.get("unpriced") or 0,
        included_seats=seats,
        daily=daily_usage(subscription, month),
    )


def daily_usage(subscription: Subscription, month: dt.date) -> tuple[tuple[dt.date, Decimal], ...]:
    rows = (
        DailyUsage.objects.filter(subscription=subscription, month=month)
        .values("day")
        .annotate(spent=Sum("credits"))
        .filter(spent__gt=0)
        .order_by("day")
    )
    return tuple((row["day"], _exact(row["spent"])) for row in rows)


def credits_text(amount: Decimal) -> str:
    """An amount as people read it: to the micro-credit, without trailing zeros ("0.02", "120")."""
    return f"{Decimal(amount).quantize(MICRO).normalize():f}"


def _exact(total) -> Decimal:
    """A SUM as micro-credits: PostgreSQL's NUMERIC sums exactly; SQLite (the laptop default) sums its decimals in
    floating point, so its totals are rounded back to the micro-credit here."""
    return Decimal(total or 0).quantize(MICRO)


def usage_events_latest(subscription: Subscription, limit: int = 20):
    return UsageEvent.objects.filter(subscription=subscription).order_by("-received_at", "-id")[:limit]


# The bands of used share the fleet is counted in (gauges, alerts): below 50%, 50–80%, 80–100%, used up.
USAGE_BANDS = ("below_50", "50_to_80", "80_to_100", "exhausted")


def _band(fraction: float) -> str:
    return (
        "exhausted"
        if fraction >= 1
        else "80_to_100"
        if fraction >= 0.8
        else "50_to_80"
        if fraction >= 0.5
        else "below_50"
    )


def credit_usage_shares(month: dt.date) -> dict[int, tuple[Decimal, Decimal]]:
    """(used, granted) of every subscription with priced usage in `month`, from three grouped queries (the fleet's
    view, for the rollup: a statement per subscription would not scale). Approximate where the statement is exact:
    included credits by today's seats unless the month's included grant is written down, and one-time credits at
    their full amount (what earlier months drew from them is not subtracted)."""
    used = dict(
        DailyUsage.objects.filter(month=month)
        .values("subscription_id")
        .annotate(spent=Sum("credits"))
        .filter(spent__gt=0)
        .values_list("subscription_id", "spent")
    )
    if not used:
        return {}
    rates = get_credit_catalog().included_per_seat_month
    granted = {
        pk: rates.get(license_type, ZERO) * seats
        for pk, license_type, seats in Subscription.objects.filter(pk__in=used).values_list(
            "pk", "license_type", "seats"
        )
    }
    end = month_after(month)
    grants = CreditGrant.objects.filter(subscription_id__in=used).filter(
        Q(month=month) | Q(kind=Kind.ONE_TIME, starts_on__lt=end, expires_on__gt=month)
    )
    for pk, kind, amount in grants.values_list("subscription_id", "kind", "amount"):
        if kind == Kind.INCLUDED:
            granted[pk] = amount  # written down: replaces the estimate by today's seats
        elif amount < 0:
            used[pk] = used[pk] - amount
        else:
            granted[pk] = granted.get(pk, ZERO) + amount
    return {pk: (_exact(spent), granted.get(pk, ZERO)) for pk, spent in used.items()}


def credit_usage_bands(month: dt.date, active_subscriptions: int) -> tuple[dict[str, int], list[tuple[int, float]]]:
    """Counts of subscriptions per band (those without usage are below 50%), and the 20 most used at 80% or more
    as (subscription id, share), most used first."""
    shares = {
        pk: float(spent / granted) if granted > 0 else 1.0
        for pk, (spent, granted) in credit_usage_shares(month).items()
    }
    bands = dict.fromkeys(USAGE_BANDS, 0)
    for share in shares.values():
        bands[_band(share)] += 1
    bands["below_50"] += max(active_subscriptions - len(shares), 0)
    nearly_out = sorted(((pk, share) for pk, share in shares.items() if share >= 0.8), key=lambda row: -row[1])
    return bands, nearly_out[:20]


def usage_top(subscription: Subscription, month: dt.date, field: str, limit: int = 5) -> list[tuple[str, Decimal]]:
    """The month's biggest users (`user_key`) or features (`feature`, else the event type) by credits."""
    key = field if field == "user_key" else "feature"
    events = UsageEvent.objects.filter(subscription=subscription, month=month, credits__isnull=False)
    if key == "user_key":  # the rollup has the users; the features only the entries
        events = DailyUsage.objects.filter(subscription=subscription, month=month, credits__gt=0)
    rows = events.values(key, *(["event_type"] if key == "feature" else [])).annotate(spent=Sum("credits"))
    totals: dict[str, Decimal] = {}
    for row in rows:
        name = row[key] or ("—" if key == "user_key" else row["event_type"])
        totals[name] = totals.get(name, ZERO) + _exact(row["spent"])
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:limit]


def burn_down(statement: MonthStatement) -> list[tuple[int, Decimal]]:
    """(day of the month, credits left at its end) for each day so far: the pools less the usage up to that day."""
    left, points = statement.granted, []
    spent_by_day = dict(statement.daily)
    today = min(dt.datetime.now(dt.UTC).date(), month_after(statement.month) - dt.timedelta(days=1))
    day = statement.month
    while day <= today:
        left -= spent_by_day.get(day, ZERO)
        points.append((day.day, left))
        day += dt.timedelta(days=1)
    return points


def daily_usage_mismatches(month: dt.date) -> list[tuple[int, dt.date, Decimal, Decimal]]:
    """(subscription, day, rollup, entries) wherever the daily rollup of `month` disagrees with the entries it sums:
    the rollup speeds reads and must never drift from the ledger (an empty list is the expected answer)."""
    from django.db.models.functions import TruncDate

    entries = {
        (row["subscription_id"], row["day"]): _exact(row["spent"])
        for row in UsageEvent.objects.filter(month=month)
        .annotate(day=TruncDate("occurred_at", tzinfo=dt.UTC))
        .values("subscription_id", "day")
        .annotate(spent=Sum("credits"))
    }
    rolled = {
        (row["subscription_id"], row["day"]): _exact(row["spent"])
        for row in DailyUsage.objects.filter(month=month)
        .values("subscription_id", "day")
        .annotate(spent=Sum("credits"))
    }
    return [
        (subscription_id, day, rolled.get((subscription_id, day), ZERO), entries.get((subscription_id, day), ZERO))
        for subscription_id, day in sorted(set(entries) | set(rolled))
        if rolled.get((subscription_id, day), ZERO) != entries.get((subscription_id, day), ZERO)
    ]
