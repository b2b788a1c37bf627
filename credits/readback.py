"""Usage read back: what GitLab's Admin > GitLab Credits page shows (PROTOCOL §9.3), read from the ledger.

Everything is recomputed from the grants and usage entries, for a period of whole days (UTC, both ends included;
GitLab asks for a calendar month):

- **Pools** come from the month statements (`credits.selectors.month_statement`), drawn in the documented order.
  Day by day: a month's pools are drawn by its negative adjustments first, then by each day's priced usage in date
  order, so a pool's daily usage sums to what the statement says it gave (drawing in order from running totals
  fills the pools exactly as drawing the month's total does). GitLab's pools are ours folded: the included credits
  are the users' own allocations; positive adjustments count with the monthly waiver; one-time credits are those
  active in the period (total = used in the period + what is left at its end); overage is past every pool.
- **Users** are `UsageEvent.user_key` (the event's GitLab user id, `subject`, else its global_user_id): GitLab asks by
  its integer user ids and gets the entries whose key is that id written out. A user's credits are their own priced
  usage in the period; their split across the pools is the period's split, proportionally (every user draws each
  pool in the same share: the ledger pools the included credits, it does not keep them per user). A user's total
  credits are the included credits per seat.
- **Flow types** are an event's `feature` (its feature_qualified_name), else its event type; **products** are the
  event types.

Amounts are Decimal credits to the micro-credit; the GraphQL door writes them as GitLab's Float.
"""

import base64
import binascii
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property

from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import TruncDate

from credits.models import CreditAccount, CreditGrant, UsageEvent
from credits.selectors import MICRO, ZERO, month_after, month_of, month_statement
from subscriptions.models import Subscription

Kind = CreditGrant.Kind
MAX_PERIOD_DAYS = 366
PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_USER_IDS = 100
POOLS = ("included", "waiver", "commitment", "one_time", "overage")
_POOL_OF_KIND = {
    Kind.INCLUDED: "included",
    Kind.WAIVER: "waiver",
    Kind.ADJUSTMENT: "waiver",
    Kind.COMMITMENT: "commitment",
    Kind.ONE_TIME: "one_time",
}
DAILY_SORTS = {
    "DATE_ASC": (lambda row: row[0], False),
    "DATE_DESC": (lambda row: row[0], True),
    "CREDITS_USED_ASC": (lambda row: (row[1], row[0]), False),
    "CREDITS_USED_DESC": (lambda row: (row[1], row[0]), True),
}


class ReadbackError(ValueError):
    """A request the read back cannot answer (a bad period, cursor or page size); the message is for the caller."""


def micro(amount) -> Decimal:
    """An amount to the micro-credit (PostgreSQL sums NUMERIC exactly; SQLite in floating point)."""
    return Decimal(amount or 0).quantize(MICRO)


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date  # included

    @property
    def since(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time(), tzinfo=dt.UTC)

    @property
    def until(self) -> dt.datetime:
        return dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)

    @property
    def months(self) -> list[dt.date]:
        months, cursor = [], month_of(self.start)
        while cursor <= self.end:
            months.append(cursor)
            cursor = month_after(cursor)
        return months

    def days_elapsed(self, today: dt.date) -> int:
        """The period's days up to today (at least one): what a daily average divides by."""
        return max((min(self.end, today) - self.start).days + 1, 1)


def usage_period(start: str | None, end: str | None, today: dt.date) -> Period:
    """The period GitLab asks for (ISO dates, both included); the current UTC month when it names none."""
    try:
        first = dt.date.fromisoformat(start) if start else today.replace(day=1)
        last = dt.date.fromisoformat(end) if end else month_after(month_of(first)) - dt.timedelta(days=1)
    except (TypeError, ValueError):
        raise ReadbackError("startDate and endDate must be ISO 8601 dates (YYYY-MM-DD).") from None
    if last < first:
        raise ReadbackError("endDate is before startDate.")
    if (last - first).days >= MAX_PERIOD_DAYS:
        raise ReadbackError(f"The period is longer than {MAX_PERIOD_DAYS} days.")
    return Period(first, last)


def flow_title(flow: str) -> str:
    """A flow type or event type as people read it ("software_development" -> "Software development")."""
    text = flow.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class Pool:
    total: Decimal
    used: Decimal  # drawn within the period
    remaining: Decimal  # at the period's end
    daily: tuple[tuple[dt.date, Decimal], ...] = ()


@dataclass(frozen=True)
class Pools:
    included: Pool
    waiver: Pool
    commitment: Pool
    one_time: Pool
    overage: Pool
    overage_allowed: bool
    included_per_user: Decimal  # the included credits per seat (summed over the period's months)

    @property
    def drawn(self) -> Decimal:
        return sum((getattr(self, name).used for name in POOLS), ZERO)


@dataclass(frozen=True)
class UserUsage:
    user_key: str
    used: Decimal  # the user's priced usage in the period
    events: int
    shares: dict = field(default_factory=dict)  # pool name -> the user's part of it
    total_credits: Decimal = ZERO

    def share(self, pool: str) -> Decimal:
        return self.shares.get(pool, ZERO)

    @property
    def user_id(self) -> int | None:
        """The key as GitLab's integer user id, when it is one (GraphQL's Int: 32 bits)."""
        if self.user_key.isascii() and self.user_key.isdigit() and int(self.user_key) < 2**31:
            return int(self.user_key)
        return None


@dataclass(frozen=True)
class UsageRow:
    occurred_at: dt.datetime
    event_type: str
    flow: str
    credits: Decimal | None


@dataclass(frozen=True)
class Page:
    rows: list
    has_next: bool
    has_previous: bool
    start_cursor: str | None
    end_cursor: str | None


@dataclass(frozen=True)
class Product:
    event_type: str
    credits_used: Decimal
    flows: tuple[str, ...]


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _uncursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ReadbackError("The cursor is not valid.") from None


def _page_size(first: int | None, last: int | None) -> tuple[int, bool]:
    """(size, from the end): `first` wins; neither means the first PAGE_SIZE."""
    if first is not None and last is not None:
        raise ReadbackError("Pass first or last, not both.")
    size = first if first is not None else last if last is not None else PAGE_SIZE
    if not 0 <= size <= MAX_PAGE_SIZE:
        raise ReadbackError(f"first and last must be between 0 and {MAX_PAGE_SIZE}.")
    return size, first is None and last is not None


class UsageReadback:
    """One subscription's usage over a period, as GitLab's client asks for it; every figure computed when first
    asked for (a document selects few of them)."""

    def __init__(self, subscription: Subscription, period: Period, flow_types=None, today: dt.date | None = None):
        self.subscription = subscription
        self.period = period
        self.flow_types = _flows(flow_types)
        self.today = today or dt.datetime.now(dt.UTC).date()

    # -- events -------------------------------------------------------------------------------------------------

    def _events(self, flow_types=None, user_key: str | None = None):
        events = UsageEvent.objects.filter(
            subscription=self.subscription, occurred_at__gte=self.period.since, occurred_at__lt=self.period.until
        )
        flows = self.flow_types if flow_types is None else _flows(flow_types)
        if flows:
            events = events.filter(Q(feature__in=flows) | Q(feature="", event_type__in=flows))
        if user_key is not None:
            events = events.filter(user_key=user_key)
        return events

    def credits_used(self) -> Decimal:
        return micro(self._events().aggregate(spent=Sum("credits"))["spent"])

    def daily_average(self) -> Decimal:
        return micro(self.credits_used() / self.period.days_elapsed(self.today))

    def daily_usage(self, *, flow_types=None, user_key: str | None = None, users_only=False, sort=None, limit=None):
        events = self._events(flow_types, user_key).filter(credits__isnull=False)
        if users_only:
            events = events.exclude(user_key="")
        rows = (
            events.annotate(day=TruncDate("occurred_at", tzinfo=dt.UTC))
            .values("day")
            .annotate(spent=Sum("credits"))
            .order_by("day")
        )
        days = [(row["day"], micro(row["spent"])) for row in rows]
        key, reverse = DAILY_SORTS.get(sort or "DATE_ASC", DAILY_SORTS["DATE_ASC"])
        days.sort(key=key, reverse=reverse)
        if limit is not None:
            if limit < 0:
                raise ReadbackError("limit must not be negative.")
            days = days[:limit]
        return days

    def overage_allowed(self) -> bool:
        return CreditAccount.objects.filter(subscription=self.subscription, overage_allowed=True).exists()

    def last_event_at(self) -> dt.datetime | None:
        return UsageEvent.objects.filter(subscription=self.subscription).aggregate(at=Max("received_at"))["at"]

    # -- pools --------------------------------------------------------------------------------------------------

    @cached_property
    def pools(self) -> Pools:
        total = dict.fromkeys(POOLS, ZERO)
        used = dict.fromkeys(POOLS, ZERO)
        daily = {name: defaultdict(Decimal) for name in POOLS}
        included_per_user, one_time_left, overage_allowed = ZERO, ZERO, False
        adjustments = list(  # the negative ones: charged like usage, before the month's first day of usage
            CreditGrant.objects.filter(
                subscription=self.subscription, kind=Kind.ADJUSTMENT, month__in=self.period.months, amount__lt=0
            )
        )
        for month in self.period.months:
            statement = month_statement(self.subscription, month)
            overage_allowed = statement.overage_allowed
            lines = [(_POOL_OF_KIND[line.kind], line.granted) for line in statement.pools]
            for name, granted in lines:
                if name != "one_time":
                    total[name] += granted
            included = sum((granted for name, granted in lines if name == "included"), ZERO)
            if statement.included_seats:
                included_per_user += micro(included / statement.included_seats)
            left = [granted for _, granted in lines]
            charge = -sum((grant.amount for grant in adjustments if grant.month == month), ZERO)
            for name, taken in _drawn(lines, left, charge).items():
                if month >= self.period.start:
                    used[name] += taken
            for day, spent in statement.daily:
                if day > self.period.end:
                    break
                for name, taken in _drawn(lines, left, spent).items():
                    if day >= self.period.start:
                        used[name] += taken
                        daily[name][day] += taken
            one_time_left = sum((rest for (name, _), rest in zip(lines, left, strict=True) if name == "one_time"), ZERO)
        total["one_time"] = used["one_time"] + one_time_left

        def pool(name):
            remaining = max(total[name] - used[name], ZERO) if name != "overage" else ZERO
            return Pool(total[name], used[name], remaining, tuple(sorted(daily[name].items())))

        pools = {name: pool(name) for name in POOLS}
        return Pools(**pools, overage_allowed=overage_allowed, included_per_user=included_per_user)

    # -- users --------------------------------------------------------------------------------------------------

    @cached_property
    def users(self) -> dict[str, UserUsage]:
        """Every user with an event in the period (under the period's flow types), with their split."""
        rows = (
            self._events()
            .exclude(user_key="")
            .values("user_key")
            .annotate(spent=Sum("credits"), events=Count("id"))
            .order_by("user_key")
        )
        return {row["user_key"]: self._user(row["user_key"], micro(row["spent"]), row["events"]) for row in rows}

    def _user(self, user_key: str, spent: Decimal, events: int) -> UserUsage:
        pools = self.pools
        drawn = pools.drawn
        shares = {name: micro(spent * getattr(pools, name).used / drawn) if drawn > 0 else ZERO for name in POOLS}
        return UserUsage(user_key, spent, events, shares, pools.included_per_user)

    def user(self, user_key: str) -> UserUsage:
        return self.users.get(user_key) or self._user(user_key, ZERO, 0)

    def users_count(self, pool: str | None = None) -> int:
        if pool is None:
            return len(self.users)
        return sum(1 for user in self.users.values() if user.share(pool) > 0)

    def users_credits_used(self) -> Decimal:
        return sum((user.used for user in self.users.values()), ZERO)

    def user_flow_types(self, user_key: str) -> list[str]:
        rows = self._events(user_key=user_key).values_list("feature", "event_type").distinct()
        return sorted({feature or event_type for feature, event_type in rows})

    def user_events(
        self, user_key: str, *, flow_types=None, first=None, last=None, after=None, before=None, page=None
    ) -> Page:
        """The user's events, newest first, as a connection (cursors) or, with `page`, the older generation's
        numbered pages."""
        events = self._events(flow_types, user_key)
        size, from_end = _page_size(first, last)
        if page is not None:
            if page < 1:
                raise ReadbackError("page starts at 1.")
            start = (page - 1) * size
            rows = list(events.order_by("-occurred_at", "-id")[start : start + size + 1])
            return self._events_page(rows[:size], len(rows) > size, page > 1)
        if after is not None:
            events = events.filter(_older_than(after))
        if before is not None:
            events = events.filter(_newer_than(before))
        if from_end:
            rows = list(events.order_by("occurred_at", "id")[: size + 1])
            more = len(rows) > size
            rows = rows[:size][::-1]
            following = before is not None and self._events(flow_types, user_key).filter(~_newer_than(before)).exists()
            return self._events_page(rows, following, more)
        rows = list(events.order_by("-occurred_at", "-id")[: size + 1])
        preceding = after is not None and self._events(flow_types, user_key).filter(~_older_than(after)).exists()
        return self._events_page(rows[:size], len(rows) > size, preceding)

    @staticmethod
    def _events_page(rows, has_next: bool, has_previous: bool) -> Page:
        cursors = [_cursor(f"{row.occurred_at.isoformat()}|{row.pk}") for row in rows]
        usage = [UsageRow(row.occurred_at, row.event_type, row.feature or row.event_type, row.credits) for row in rows]
        return Page(usage, has_next, has_previous, cursors[0] if cursors else None, cursors[-1] if cursors else None)

    def consumers(self, *, ascending=False, first=None, last=None, after=None, before=None) -> Page:
        """The users GitLab can name (integer keys) by their total credits used, then by id; cursors are
        positions in that order."""
        ranked = sorted(
            (user for user in self.users.values() if user.user_id is not None),
            key=lambda user: (user.used if ascending else -user.used, user.user_id),
        )
        size, from_end = _page_size(first, last)
        low = _position(after) + 1 if after is not None else 0
        high = _position(before) if before is not None else len(ranked)
        low, high = max(low, 0), min(high, len(ranked))
        start, stop = (max(high - size, low), high) if from_end else (low, min(low + size, high))
        rows = ranked[start:stop] if start < stop else []
        return Page(
            rows,
            has_next=stop < len(ranked),
            has_previous=start > 0,
            start_cursor=_cursor(f"consumer:{start}") if rows else None,
            end_cursor=_cursor(f"consumer:{stop - 1}") if rows else None,
        )

    # -- products -----------------------------------------------------------------------------------------------

    def products(self) -> list[Product]:
        rows = (
            self._events()
            .values("event_type", "feature")
            .annotate(spent=Sum("credits"))
            .order_by("event_type", "feature")
        )
        spent, flows = defaultdict(Decimal), defaultdict(set)
        for row in rows:
            spent[row["event_type"]] += micro(row["spent"])
            flows[row["event_type"]].add(row["feature"] or row["event_type"])
        return [Product(name, spent[name], tuple(sorted(flows[name]))) for name in sorted(spent)]


def _flows(flow_types) -> list[str]:
    return [flow for flow in (flow_types or ()) if isinstance(flow, str) and flow]


def _drawn(lines: list[tuple[str, Decimal]], left: list[Decimal], amount: Decimal) -> dict[str, Decimal]:
    """Draws `amount` from the pools in order (`left` holds what each still has, and is updated); what each pool
    gave, and the rest as overage."""
    taken = defaultdict(Decimal)
    for index, (name, _granted) in enumerate(lines):
        take = min(max(left[index], ZERO), amount)
        if take:
            left[index] -= take
            taken[name] += take
            amount -= take
    if amount > 0:
        taken["overage"] += amount
    return taken


def _event_position(cursor: str) -> tuple[dt.datetime, int]:
    text = _uncursor(cursor)
    try:
        moment, pk = text.rsplit("|", 1)
        return dt.datetime.fromisoformat(moment), int(pk)
    except ValueError:
        raise ReadbackError("The cursor is not valid.") from None


def _older_than(cursor: str) -> Q:
    moment, pk = _event_position(cursor)
    return Q(occurred_at__lt=moment) | Q(occurred_at=moment, id__lt=pk)


def _newer_than(cursor: str) -> Q:
    moment, pk = _event_position(cursor)
    return Q(occurred_at__gt=moment) | Q(occurred_at=moment, id__gt=pk)


def _position(cursor: str) -> int:
    text = _uncursor(cursor)
    prefix, _, number = text.partition(":")
    if prefix != "consumer" or not number.isdigit():
        raise ReadbackError("The cursor is not valid.")
    return int(number)
