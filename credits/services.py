"""Writes of the credits ledger: usage events recorded exactly once, and grants (pools) that people give, each with
an audit event and a visible reason. Nothing is ever updated or deleted: a correction is another grant."""

import datetime as dt
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F
from prometheus_client import Counter as PrometheusCounter

from audit.reasons import reason_text
from audit.services import audit_record, audit_record_change, audit_snapshot, not_audited
from credits.collector import BillableEvent
from credits.models import CreditAccount, CreditGrant, DailyUsage, UsageEvent, UsageEventId, UserCapOverride
from credits.quota import ledger_moved
from credits.selectors import included_credits, month_after, month_of
from subscriptions.models import Instance, Subscription
from unit_primitives.credits import get_credit_catalog

MICRO = Decimal("0.000001")
ID_CHUNK = 500  # event ids per INSERT … RETURNING (two parameters each: within every database's limit)
events_counted = PrometheusCounter(
    "issuer_credits_events_total", "Billable usage events received, by outcome", ["outcome"]
)


@dataclass
class IngestReport:
    stored: int = 0
    duplicates: int = 0
    unpriced: int = 0
    refused: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {
            "stored": self.stored,
            "duplicates": self.duplicates,
            "unpriced": self.unpriced,
            "refused": dict(sorted(self.refused.items())),
        }

    def count(self) -> None:
        for outcome, number in (("stored", self.stored), ("duplicate", self.duplicates), *self.refused.items()):
            if number:
                events_counted.labels(outcome).inc(number)


def _ids_inserted(event_ids: list[uuid.UUID], at: dt.datetime) -> set[uuid.UUID]:
    """Inserts the ids not seen before, one statement a chunk; returns those it inserted (ON CONFLICT DO NOTHING
    RETURNING): a concurrent delivery of the same id waits on the key and inserts nothing."""
    table = UsageEventId._meta.db_table
    id_field, at_field = UsageEventId._meta.get_field("event_id"), UsageEventId._meta.get_field("received_at")
    received = at_field.get_db_prep_value(at, connection)
    inserted = set()
    with connection.cursor() as cursor:
        for start in range(0, len(event_ids), ID_CHUNK):
            chunk = event_ids[start : start + ID_CHUNK]
            values = ", ".join(["(%s, %s)"] * len(chunk))
            params = [
                value for event_id in chunk for value in (id_field.get_db_prep_value(event_id, connection), received)
            ]
            cursor.execute(
                f"INSERT INTO {table} (event_id, received_at) VALUES {values} "  # noqa: S608 (a model's table)
                "ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
                params,
            )
            inserted.update(value if isinstance(value, uuid.UUID) else uuid.UUID(value) for (value,) in cursor)
    return inserted


USAGE_COLUMNS = (
    "event_id",
    "subscription_id",
    "instance_id",
    "event_type",
    "unit_of_measure",
    "quantity",
    "credits",
    "occurred_at",
    "month",
    "realm",
    "user_key",
    "feature",
    "correlation_id",
    "received_at",
)


@not_audited("usage reported by the AI gateway: the entries are themselves the record")
def usage_events_record(events: list[BillableEvent], *, at: dt.datetime, report: IngestReport) -> IngestReport:
    """Stores each event once, whatever how often it is delivered: deduplicated inside the batch, then against every
    id ever accepted; the ledger gets exactly the events whose id was inserted now, priced from the catalog. In one
    transaction committed synchronously (an acknowledged billing event must never be lost); on PostgreSQL in one
    statement for the whole batch."""
    unique: dict[uuid.UUID, BillableEvent] = {}
    for event in events:
        if event.event_id in unique:
            report.duplicates += 1
        else:
            unique[event.event_id] = event
    if not unique:
        return report
    prices = get_credit_catalog()
    priced = []
    for event in unique.values():
        price = prices.price(event.event_type, event.unit_of_measure)
        priced.append((event, (event.quantity * price).quantize(MICRO) if price is not None else None))
    record = _record_in_one_statement if connection.vendor == "postgresql" else _record_through_the_orm
    with transaction.atomic():
        known, stored, unpriced, subscriptions = record(priced, at)
        transaction.on_commit(lambda: ledger_moved(subscriptions))
    report.refused["unknown_instance"] += len(priced) - known
    report.duplicates += known - stored
    report.stored += stored
    report.unpriced += unpriced
    return report


def _record_in_one_statement(priced: list[tuple[BillableEvent, Decimal | None]], at: dt.datetime):
    """(known, stored, unpriced, subscriptions): the batch joined to its bound instances, its new ids inserted (ON
    CONFLICT DO NOTHING RETURNING), exactly those events stored and added to the daily rollup, in one round trip."""
    columns = list(
        zip(
            *[
                (
                    event.event_id,
                    event.instance_id,
                    event.event_type,
                    event.unit_of_measure,
                    event.quantity,
                    credits,
                    event.occurred_at,
                    month_of(event.occurred_at),
                    event.realm,
                    event.user_key,
                    event.feature,
                    event.correlation_id,
                )
                for event, credits in priced
            ],
            strict=True,
        )
    )
    sql = f"""
        WITH batch AS (
            SELECT * FROM unnest(%s::uuid[], %s::uuid[], %s::text[], %s::text[], %s::numeric[], %s::numeric[],
                                 %s::timestamptz[], %s::date[], %s::text[], %s::text[], %s::text[], %s::text[])
                AS b(event_id, instance_uuid, event_type, unit_of_measure, quantity, credits, occurred_at, month,
                     realm, user_key, feature, correlation_id)
        ), known AS (
            SELECT b.*, i.id AS instance_pk, i.subscription_id FROM batch b
            JOIN {Instance._meta.db_table} i
                ON i.instance_identifier = b.instance_uuid AND i.subscription_id IS NOT NULL
        ), fresh AS (
            INSERT INTO {UsageEventId._meta.db_table} (event_id, received_at) SELECT event_id, %s FROM known
            ON CONFLICT (event_id) DO NOTHING RETURNING event_id
        ), stored AS (
            INSERT INTO {UsageEvent._meta.db_table} ({", ".join(USAGE_COLUMNS)})
            SELECT k.event_id, k.subscription_id, k.instance_pk, k.event_type, k.unit_of_measure, k.quantity,
                   k.credits, k.occurred_at, k.month, k.realm, k.user_key, k.feature, k.correlation_id, %s
            FROM known k JOIN fresh USING (event_id)
            RETURNING credits IS NULL AS unpriced, subscription_id, occurred_at, month, user_key, credits
        ), rolled AS (
            INSERT INTO {DailyUsage._meta.db_table} (subscription_id, day, month, user_key, credits, events, unpriced)
            SELECT subscription_id, (occurred_at AT TIME ZONE 'UTC')::date, month, user_key,
                   coalesce(sum(credits), 0), count(*), count(*) FILTER (WHERE unpriced)
            FROM stored GROUP BY 1, 2, 3, 4
            ORDER BY 1, 2, 4  -- one order of row locks for every batch: concurrent batches never deadlock
            ON CONFLICT (subscription_id, day, user_key) DO UPDATE SET
                credits = {DailyUsage._meta.db_table}.credits + excluded.credits,
                events = {DailyUsage._meta.db_table}.events + excluded.events,
                unpriced = {DailyUsage._meta.db_table}.unpriced + excluded.unpriced
        )
        SELECT (SELECT count(*) FROM known), count(*), count(*) FILTER (WHERE unpriced),
               coalesce(array_agg(DISTINCT subscription_id), '{{}}') FROM stored
    """  # noqa: S608 (the models' own tables and columns)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*(list(column) for column in columns), at, at])
        return cursor.fetchone()


def _record_through_the_orm(priced: list[tuple[BillableEvent, Decimal | None]], at: dt.datetime):
    """The same on other databases (the laptop's SQLite): the bound instances read, the new ids inserted, then
    exactly those events stored."""
    instances = {
        identifier: (pk, subscription_id)
        for identifier, pk, subscription_id in Instance.objects.filter(
            instance_identifier__in={event.instance_id for event, _ in priced if event.instance_id},
            subscription__isnull=False,
        ).values_list("instance_identifier", "pk", "subscription_id")
    }
    known = [(event, credits) for event, credits in priced if event.instance_id in instances]
    inserted = _ids_inserted([event.event_id for event, _ in known], at) if known else set()
    rows = [
        UsageEvent(
            event_id=event.event_id,
            subscription_id=instances[event.instance_id][1],
            instance_id=instances[event.instance_id][0],
            event_type=event.event_type,
            unit_of_measure=event.unit_of_measure,
            quantity=event.quantity,
            credits=credits,
            occurred_at=event.occurred_at,
            month=month_of(event.occurred_at),
            realm=event.realm,
            user_key=event.user_key,
            feature=event.feature,
            correlation_id=event.correlation_id,
            received_at=at,
        )
        for event, credits in known
        if event.event_id in inserted
    ]
    UsageEvent.objects.bulk_create(rows)
    _daily_rollup_add(rows)
    return len(known), len(rows), sum(row.credits is None for row in rows), {row.subscription_id for row in rows}


def _daily_rollup_add(rows: list[UsageEvent]) -> None:
    """The daily rollup of these new entries, a row per subscription, UTC day and user (the ORM path's twin of the
    PostgreSQL statement's `rolled`)."""
    sums: dict[tuple, list] = {}
    for row in rows:
        key = (row.subscription_id, row.occurred_at.astimezone(dt.UTC).date(), row.month, row.user_key)
        total = sums.setdefault(key, [Decimal(0), 0, 0])
        total[0] += row.credits or 0
        total[1] += 1
        total[2] += row.credits is None
    for (subscription_id, day, month, user_key), (spent, events, unpriced) in sorted(sums.items()):
        updated = DailyUsage.objects.filter(subscription_id=subscription_id, day=day, user_key=user_key).update(
            credits=F("credits") + spent, events=F("events") + events, unpriced=F("unpriced") + unpriced
        )
        if not updated:
            DailyUsage.objects.create(
                subscription_id=subscription_id,
                day=day,
                month=month,
                user_key=user_key,
                credits=spent,
                events=events,
                unpriced=unpriced,
            )


def _grant_saved(grant: CreditGrant) -> CreditGrant:
    grant.full_clean()
    grant.save()
    transaction.on_commit(lambda: ledger_moved([grant.subscription_id]))
    audit_record_change(f"creditgrant.{grant.kind}", grant, {}, reason=grant.reason)
    return grant


@transaction.atomic
def credit_grant_create(
    *,
    subscription: Subscription,
    kind: str,
    amount: Decimal,
    reason: str,
    month: dt.date | None = None,
    starts_on: dt.date | None = None,
    expires_on: dt.date | None = None,
) -> CreditGrant:
    """A waiver, a commitment or an adjustment for a month, or one-time credits for a period: a new pool (never a
    change to an old one), with the person's reason. Included credits come from the plan, not from here."""
    reason = _required(reason, "A grant")
    if kind not in CreditGrant.Kind.values or kind == CreditGrant.Kind.INCLUDED:
        raise ValidationError(f"Unknown kind of grant {kind!r}: waiver, commitment, one_time or adjustment.")
    return _grant_saved(
        CreditGrant(
            subscription=subscription,
            kind=kind,
            amount=Decimal(amount),
            month=month.replace(day=1) if month else None,
            starts_on=starts_on,
            expires_on=expires_on,
            reason=reason,
        )
    )


@transaction.atomic
def credit_included_grant_fix(subscription: Subscription, month: dt.date) -> CreditGrant:
    """Writes down the plan's included credits of a month (the seats at its start × the plan's rate), once: the
    monthly job does it on the 1st, so that the figure no longer depends on the audit trail being read back."""
    month = month.replace(day=1)
    existing = CreditGrant.objects.filter(subscription=subscription, kind=CreditGrant.Kind.INCLUDED, month=month)
    if found := existing.first():
        return found
    amount, seats = included_credits(subscription, month)
    return _grant_saved(
        CreditGrant(
            subscription=subscription,
            kind=CreditGrant.Kind.INCLUDED,
            amount=amount,
            month=month,
            seats=seats,
            reason=f"{seats} seats × the {subscription.license_type} plan's included credits",
        )
    )


@transaction.atomic
def credit_overage_set(subscription: Subscription, allowed: bool, *, reason: str) -> CreditAccount:
    """Whether usage past every pool goes on (billed as overage) or stops (the quota check answers 402)."""
    reason = _required(reason, "Changing overage")
    account, _ = CreditAccount.objects.select_for_update().get_or_create(subscription=subscription)
    before = audit_snapshot(account)
    if account.overage_allowed != allowed:
        account.overage_allowed = allowed
        account.save(update_fields=["overage_allowed", "updated_at"])
        audit_record_change("creditaccount.overage", account, before, reason=reason)
        transaction.on_commit(lambda: ledger_moved([subscription.pk]))
    return account


@transaction.atomic
def credit_user_cap_set(subscription: Subscription, cap: Decimal | None, *, reason: str) -> CreditAccount:
    """The flat monthly cap of every user of the subscription (None: no cap)."""
    reason = _required(reason, "Changing a cap")
    if cap is not None and Decimal(cap) < 0:
        raise ValidationError("A cap is 0 or more.")
    account, _ = CreditAccount.objects.select_for_update().get_or_create(subscription=subscription)
    before = audit_snapshot(account)
    account.user_cap = None if cap is None else Decimal(cap).quantize(MICRO)  # as the column stores it
    account.save(update_fields=["user_cap", "updated_at"])
    if audit_record_change("creditaccount.user_cap", account, before, reason=reason):
        transaction.on_commit(lambda: ledger_moved([subscription.pk]))
    return account


@transaction.atomic
def credit_user_cap_override_set(
    subscription: Subscription, user_key: str, cap: Decimal | None, *, reason: str
) -> UserCapOverride | None:
    """One user's own cap over the flat one; None removes the override (the flat cap applies again)."""
    reason = _required(reason, "Changing a user's cap")
    user_key = (user_key or "").strip()[:100]
    if not user_key:
        raise ValidationError("Name the user (their GitLab user id).")
    override = UserCapOverride.objects.select_for_update().filter(subscription=subscription, user_key=user_key).first()
    before = audit_snapshot(override) if override else {}
    if cap is None:
        if override is not None:
            audit_record("usercapoverride.delete", override, changes={"cap": [str(override.cap), None]}, reason=reason)
            override.delete()
            transaction.on_commit(lambda: ledger_moved([subscription.pk]))
        return None
    override = override or UserCapOverride(subscription=subscription, user_key=user_key)
    override.cap = Decimal(cap).quantize(MICRO)
    override.full_clean()
    override.save()
    audit_record_change("usercapoverride.set", override, before, reason=reason)
    transaction.on_commit(lambda: ledger_moved([subscription.pk]))
    return override


def _required(reason: str, what: str) -> str:
    reason = reason_text(reason)
    if not reason:
        raise ValidationError(f"{what} needs a reason (it is recorded in the audit trail).")
    return reason


@not_audited("each grant it writes is recorded by credit_included_grant_fix")
def credit_included_grants_fix_month(month: dt.date, *, chunk: int = 1000) -> int:
    """Writes down the included credits of `month` for every subscription that runs in it and has none yet, a
    transaction each (the daily job: idempotent, and a run that stops half-way loses nothing). Returns how many."""
    month = month.replace(day=1)
    done = CreditGrant.objects.filter(kind=CreditGrant.Kind.INCLUDED, month=month).values("subscription_id")
    due = (
        Subscription.objects.filter(starts_on__lt=month_after(month), expires_on__gt=month)
        .exclude(pk__in=done)
        .order_by("pk")
    )
    written = 0
    for subscription in due.iterator(chunk_size=chunk):
        credit_included_grant_fix(subscription, month)
        written += 1
    return written
