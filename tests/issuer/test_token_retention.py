"""Token records have a lifecycle: monthly partitions created ahead and dropped past the retention on
PostgreSQL, batched deletes elsewhere; each removal is an audit event."""

import datetime as dt

import pytest
from django.db import connection

from audit.models import AuditEvent
from issuer.fleet.selectors import token_partitions
from issuer.fleet.services import token_records_retain
from issuer.keys.services import signing_key_ensure_active
from issuer.models import IssuedToken
from tests.helpers import mint_token, postgres_only

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)


def _months(at: dt.datetime, *offsets: int) -> list[str]:
    names = []
    for offset in offsets:
        year, month = divmod(at.year * 12 + at.month - 1 + offset, 12)
        names.append(f"issuer_issuedtoken_y{year}m{month + 1:02d}")
    return names


@postgres_only
def test_a_simulated_year_creates_months_ahead_and_drops_months_past_the_retention(settings, activated):
    settings.ISSUER = {**settings.ISSUER, "TOKEN_RECORD_RETENTION_DAYS": 90}
    instance, _ = activated
    signing_key_ensure_active()
    for month in range(14):
        at = T0 + dt.timedelta(days=30.5 * month)
        token_records_retain(at=at)
        mint_token(instance, at=at)
        partitions = token_partitions()
        assert set(_months(at, 0, 1, 2)) <= set(partitions), f"month {month}: {sorted(partitions)}"
        oldest_kept = min(partitions.values())
        assert oldest_kept + dt.timedelta(days=31) > at - dt.timedelta(days=90 + 31), sorted(partitions)
    end = T0 + dt.timedelta(days=30.5 * 13)
    assert _months(T0, 0)[0] not in token_partitions()
    kept = IssuedToken.objects.order_by("issued_at").values_list("issued_at", flat=True)
    assert kept[0] > end - dt.timedelta(days=90 + 62) and kept[len(kept) - 1] == end.replace(microsecond=0)
    drops = AuditEvent.objects.filter(action="issuedtoken.partition_drop")
    assert _months(T0, 0)[0] in set(drops.values_list("object_id", flat=True))
    assert all("retention of 90 days" in event.reason for event in drops)
    assert not AuditEvent.objects.filter(action="issuedtoken.retention_delete").exists()  # whole months only


@postgres_only
def test_records_in_the_default_partition_move_into_their_month_when_it_is_created(activated):
    instance, _ = activated
    signing_key_ensure_active()
    far = dt.datetime.now(dt.UTC) + dt.timedelta(days=200)  # beyond the months the migration created
    minted = mint_token(instance, at=far)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM issuer_issuedtoken_default")
        assert cursor.fetchone()[0] == 1
    report = token_records_retain(at=far)
    assert _months(far, 0)[0] in report.created
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM issuer_issuedtoken_default")
        assert cursor.fetchone()[0] == 0
        cursor.execute(f"SELECT count(*) FROM {_months(far, 0)[0]}")
        assert cursor.fetchone()[0] == 1
    assert IssuedToken.objects.get(jti=minted.record.jti).kid == minted.record.kid


def test_without_partitions_old_records_are_deleted_in_batches(settings, activated, monkeypatch):
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL drops whole months")
    from issuer.fleet import services

    monkeypatch.setattr(services, "DELETE_BATCH", 2)
    settings.ISSUER = {**settings.ISSUER, "TOKEN_RECORD_RETENTION_DAYS": 30}
    instance, _ = activated
    signing_key_ensure_active()
    now = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)
    for days in (100, 60, 45, 31, 10, 0):
        mint_token(instance, at=now - dt.timedelta(days=days))
    assert token_records_retain(at=now).deleted == 4
    assert IssuedToken.objects.count() == 2
    event = AuditEvent.objects.get(action="issuedtoken.retention_delete")
    assert event.changes == {"records": [4, 0]} and "30 days" in event.reason


def _partitions_writing_out_of_line() -> dict[str, list]:
    """Partitions without the storage option, and partitions whose TOAST table holds anything."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.reloptions, pg_relation_size(c.reltoastrelid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'issuer_issuedtoken'::regclass"
        )
        return {
            name: [options, toast_bytes]
            for name, options, toast_bytes in cursor.fetchall()
            if "toast_tuple_target=8160" not in (options or []) or toast_bytes
        }


@postgres_only
def test_every_partition_keeps_its_records_ciphertext_in_the_row(activated):
    """No compression attempt on the random ciphertext and no TOAST write per record: on the partitions the
    migrations made, on those the job creates ahead, and on one moved out of the default partition."""
    instance, _ = activated
    signing_key_ensure_active()
    far = dt.datetime.now(dt.UTC) + dt.timedelta(days=200)
    mint_token(instance, at=far)  # lands in the default partition; its month is created around it
    token_records_retain(at=far)
    for at in (dt.datetime.now(dt.UTC), far):
        for _ in range(3):
            mint_token(instance, at=at)
    assert _months(far, 0, 1, 2)[0] in token_partitions()
    assert _partitions_writing_out_of_line() == {}
