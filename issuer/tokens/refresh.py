"""The refresh job: pre-mints tokens for instances whose stored token is not fresh (near expiry, entitlements
changed, key rotated or revoked), in id-range chunks fanned out over the workers, so a sync usually hands out a
stored token instead of signing."""

import datetime as dt
from collections.abc import Callable

import orjson
from django.db import connection, transaction
from django.db.models import JSONField
from django.utils import timezone

from issuer.conf import issuer_settings
from issuer.jobs import job_record_success
from issuer.keys.selectors import keyset
from issuer.models import IssuedToken
from issuer.sync_state.store import sync_state_forget
from issuer.tokens.selectors import newest_token_annotations, token_is_fresh
from issuer.tokens.services import service_access_token_sign, signer_active
from subscriptions.models import Instance
from subscriptions.selectors import Entitlements, add_on_quantities_active, instance_entitlements


def _refreshable_instances():
    return Instance.objects.filter(subscription__isnull=False, suspended=False)


def token_refresh_plan(chunk_size: int | None = None) -> list[tuple[int, int]]:
    """Splits the instances into id ranges of at most `chunk_size`, for fanning out over workers. The database
    numbers the ids and returns only each range's ends, so the plan of a million instances is a few thousand rows,
    never a million ids in this process."""
    chunk_size = chunk_size or issuer_settings.REFRESH_CHUNK_SIZE
    ids, params = _refreshable_instances().order_by().values("id").query.sql_with_params()
    ranges = (
        "SELECT MIN(id), MAX(id) FROM ("  # noqa: S608 (the ORM's own SQL; the chunk size is a parameter)
        f"SELECT numbered.id, (ROW_NUMBER() OVER (ORDER BY numbered.id) - 1) / %s AS chunk FROM ({ids}) numbered"
        ") chunks GROUP BY chunk ORDER BY 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(ranges, [chunk_size, *params])
        return [(first, last) for first, last in cursor.fetchall()]


def token_refresh_run(dispatch: Callable[[int, int], object], *, at: dt.datetime | None = None) -> int:
    """One run of the job: every chunk handed to `dispatch` (the Celery door passes the chunk task's `delay`),
    ciphertexts of expired tokens dropped, the run recorded. Returns the number of chunks."""
    at = at or timezone.now()
    plan = token_refresh_plan()
    for first_id, last_id in plan:
        dispatch(first_id, last_id)
    token_ciphertexts_drop_expired(at=at)
    job_record_success("token_refresh", at=at)
    return len(plan)


@transaction.atomic
def token_refresh_chunk(first_id: int, last_id: int, *, at: dt.datetime | None = None) -> int:
    """Pre-mints for every instance in [first_id, last_id] whose newest token is not fresh.

    The instance rows are locked (rows another run holds are skipped: that run mints them), and freshness is
    decided after locking, so two runs at once mint once per instance. Returns the number minted.
    """
    at = at or timezone.now()
    queryset = _refreshable_instances().filter(pk__gte=first_id, pk__lte=last_id)
    locking = queryset.select_for_update(skip_locked=connection.features.has_select_for_update_skip_locked)
    locked_ids = list(locking.values_list("pk", flat=True))
    instances = list(
        Instance.objects.filter(pk__in=locked_ids).select_related("subscription").annotate(**newest_token_annotations())
    )
    add_ons = add_on_quantities_active([i.subscription_id for i in instances], at.astimezone(dt.UTC).date())
    active_kid = keyset().active_kid
    signer = None
    minted = []
    for instance in instances:
        entitlements = instance_entitlements(instance, at, active_add_ons=add_ons.get(instance.subscription_id, []))
        if not entitlements.access:
            continue
        if token_is_fresh(
            fingerprint=instance.newest_token_fingerprint,
            kid=instance.newest_token_kid,
            expires_at=instance.newest_token_expires_at,
            entitlements=entitlements,
            active_kid=active_kid,
            at=at,
        ):
            continue
        signer = signer or signer_active()
        reason = _refresh_reason(instance, entitlements, active_kid)
        minted.append(service_access_token_sign(instance, entitlements, at=at, reason=reason, signer=signer))
    _insert_tokens([token.record for token in minted])
    sync_state_forget(token.record.instance.license_key_digest for token in minted)
    return len(minted)


def _insert_tokens(records: list[IssuedToken]) -> None:
    """Many token records at once: PostgreSQL's COPY (a third of the refresh job's time went into building and
    parsing one huge INSERT), `bulk_create` elsewhere. The columns are the model's own."""
    if not records:
        return
    if connection.vendor != "postgresql":
        IssuedToken.objects.bulk_create(records, batch_size=500)
        return
    from psycopg.types.json import Jsonb

    fields = IssuedToken._meta.concrete_fields
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    table = connection.ops.quote_name(IssuedToken._meta.db_table)
    json_fields = {field.attname for field in fields if isinstance(field, JSONField)}
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,  # noqa: S608 (the model's names)
    ):
        for record in records:
            copy.write_row(
                [
                    Jsonb(value, dumps=orjson.dumps) if name in json_fields else value
                    for name, value in ((field.attname, getattr(record, field.attname)) for field in fields)
                ]
            )


def _refresh_reason(instance, entitlements: Entitlements, active_kid: str | None) -> str:
    if instance.newest_token_kid is None:
        return "refresh_first"
    if instance.newest_token_fingerprint != entitlements.fingerprint:
        return "refresh_entitlements"
    if instance.newest_token_kid != active_kid:
        return "refresh_key"
    return "refresh_expiry"


def token_ciphertexts_drop_expired(*, at: dt.datetime | None = None) -> int:
    """Expired tokens need no ciphertext: only the record (jti, kid, scopes, times) stays."""
    at = at or timezone.now()
    return IssuedToken.objects.filter(expires_at__lt=at, token_encrypted__isnull=False).update(token_encrypted=None)
