"""The refresh job: pre-mints tokens for instances whose stored token is not fresh (near expiry, entitlements
changed, key rotated or revoked), in id-range chunks fanned out over the workers, so a sync usually hands out a
stored token instead of signing."""

import contextlib
import datetime as dt
from collections.abc import Callable
from functools import cached_property

import orjson
from django.db import connection, transaction
from django.db.models import JSONField
from django.utils import timezone
from psycopg.types.json import Jsonb

from issuer.conf import issuer_settings
from issuer.jobs import job_record_success
from issuer.keys.selectors import keyset
from issuer.models import IssuedToken
from issuer.sync_state.store import sync_state_forget
from issuer.tokens.selectors import (
    NewestInWindow,
    freshness_window_start,
    instances_with_tokens_before,
    newest_tokens_in_window,
    token_is_fresh,
)
from issuer.tokens.services import MintedToken, service_access_token_sign, signer_active
from subscriptions.models import Instance, Subscription
from subscriptions.selectors import Entitlements, add_on_quantities_active, instance_entitlements

# The columns entitlements and signing read (`instance_entitlements`, `service_access_token_sign`), and the
# license-key digest whose cached sync state is dropped: loading only these halves the cost of a chunk's rows. A
# deferred column read in the loop would be a query while the COPY is open, which fails the chunk (and its tests).
INSTANCE_FIELDS = ("subscription_id", "suspended", "instance_identifier", "gitlab_version", "license_key_digest")
SUBSCRIPTION_FIELDS = ("license_type", "starts_on", "expires_on", "suspended")


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
    ciphertexts of expired tokens dropped, the run recorded. Returns the number of chunks.

    With no active key (every key revoked while the PKCS#11 token that would make the next one is away) nothing can
    be minted: the run does nothing and is not recorded, so a re-mint asked for stays pending for the next run."""
    at = at or timezone.now()
    if keyset().active_kid is None:
        return 0
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
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Committed without waiting for the WAL flush, as a sync's record: a crash may lose the last records
            # (a token already handed out stays valid, verification reads the published keys, not the records),
            # and the next run mints for those instances again.
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
    in_range = _refreshable_instances().filter(pk__gte=first_id, pk__lte=last_id)
    skip_locked = connection.features.has_select_for_update_skip_locked
    instances = list(in_range.select_for_update(skip_locked=skip_locked).only(*INSTANCE_FIELDS).order_by("pk"))
    if not instances:
        return 0
    # The subscriptions by their ids, not joined: for a join PostgreSQL may choose to read every subscription.
    subscription_ids = [instance.subscription_id for instance in instances]
    subscriptions = {
        subscription.pk: subscription
        for subscription in Subscription.objects.only(*SUBSCRIPTION_FIELDS).filter(pk__any_of=subscription_ids)
    }
    add_ons = add_on_quantities_active(subscription_ids, at.astimezone(dt.UTC).date())
    # The tokens by the chunk's range, never a list of its ids: a placeholder per id costs more to build than the
    # query takes to run.
    newest = newest_tokens_in_window(first_id, last_id, at)
    # An instance without a token in the window was issued one before it, or never (its first token).
    window_start = freshness_window_start(at)
    without_window_token = any(instance.pk not in newest for instance in instances)
    ever_issued = instances_with_tokens_before(first_id, last_id, window_start) if without_window_token else set()
    active_kid = keyset().active_kid
    minted_digests = []
    with _TokenRecordWriter() as writer:
        for instance in instances:
            instance.subscription = subscriptions[instance.subscription_id]
            entitlements = instance_entitlements(instance, at, active_add_ons=add_ons.get(instance.subscription_id, []))
            if not entitlements.access:
                continue
            token = newest.get(instance.pk)
            if token is not None and token_is_fresh(
                fingerprint=token.fingerprint,
                kid=token.kid,
                expires_at=token.expires_at,
                entitlements=entitlements,
                active_kid=active_kid,
                at=at,
            ):
                continue
            reason = _refresh_reason(token, instance.pk in ever_issued, entitlements, active_kid)
            writer.write(service_access_token_sign(instance, entitlements, at=at, reason=reason, signer=writer.signer))
            minted_digests.append(instance.license_key_digest)
    sync_state_forget(minted_digests)
    return len(minted_digests)


class _TokenRecordWriter:
    """Writes the minted records as they come. On PostgreSQL that is one binary COPY, opened at the first token and
    fed a row per token from its columns (no model object per token): the database reads the rows while this worker
    signs the next ones, and inserts them in batches, the last when the COPY ends. Elsewhere a `bulk_create` at the
    end. No other query may run on the connection while the COPY is open: the signing key is loaded before it
    opens."""

    def __init__(self):
        self._copy = None
        self._stack = contextlib.ExitStack()
        self._fields = IssuedToken._meta.concrete_fields
        self._layout = [(field.attname, isinstance(field, JSONField)) for field in self._fields]
        self._pending: list[IssuedToken] = []

    def __enter__(self):
        return self

    @cached_property
    def signer(self):
        return signer_active()

    def write(self, minted: MintedToken) -> None:
        if connection.vendor != "postgresql":
            self._pending.append(minted.record)
            return
        if self._copy is None:
            column_list = ", ".join(connection.ops.quote_name(field.column) for field in self._fields)
            table = connection.ops.quote_name(IssuedToken._meta.db_table)
            cursor = self._stack.enter_context(connection.cursor())
            self._copy = self._stack.enter_context(
                cursor.cursor.copy(f"COPY {table} ({column_list}) FROM STDIN (FORMAT BINARY)")  # noqa: S608
            )
            # Binary: the ciphertext goes as its bytes, not twice as many hex digits, and no value is parsed.
            self._copy.set_types([field.db_type(connection).split("(")[0] for field in self._fields])
        columns = minted.columns
        self._copy.write_row(
            [Jsonb(columns[name], dumps=orjson.dumps) if is_json else columns[name] for name, is_json in self._layout]
        )

    def __exit__(self, *exc_info):
        self._stack.__exit__(*exc_info)
        if self._pending and exc_info[0] is None:
            IssuedToken.objects.bulk_create(self._pending, batch_size=500)


def _refresh_reason(
    newest: NewestInWindow | None, ever_issued: bool, entitlements: Entitlements, active_kid: str | None
) -> str:
    """Why the instance is minted for. A newest token older than the freshness window is near its expiry whatever
    else changed since, so it is `refresh_expiry` (its key and fingerprint are not read)."""
    if newest is None:
        return "refresh_expiry" if ever_issued else "refresh_first"
    if newest.fingerprint != entitlements.fingerprint:
        return "refresh_entitlements"
    if newest.kid != active_kid:
        return "refresh_key"
    return "refresh_expiry"


def token_ciphertexts_drop_expired(*, at: dt.datetime | None = None) -> int:
    """Expired tokens need no ciphertext: only the record (jti, kid, scopes, times) stays."""
    at = at or timezone.now()
    return IssuedToken.objects.filter(expires_at__lt=at, token_encrypted__isnull=False).update(token_encrypted=None)
