"""Writes of the issuer: the signing-key lifecycle and token minting. Every door calls these."""

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field

import jwt
import orjson
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from issuer import crypto, encryption, metrics
from issuer.conf import issuer_settings
from issuer.models import IssuedToken, JobLock, SigningKey
from issuer.selectors import keyset, keyset_invalidate, newest_token_annotations, token_is_fresh
from issuer.sync_state import SyncState, sync_state_forget, sync_state_replace_token, sync_state_touch
from subscriptions.models import Instance
from subscriptions.selectors import Entitlements, add_on_quantities_active, instance_entitlements
from subscriptions.services import (
    SyncRecord,
    instance_error_record,
    instance_foreign_id_record,
    instance_sync_record,
)

logger = logging.getLogger(__name__)
State = SigningKey.State


class SigningKeyRefused(Exception):
    """A lifecycle step the rules do not allow (now, or without force); the message says why."""


class InstanceIdMismatch(Exception):
    """A sync whose X-Gitlab-Instance-Id is not the instance the license key is bound to (a cloned instance)."""


INSTANCE_ID_MISMATCH = (
    "X-Gitlab-Instance-Id does not match the instance this license key was activated for, so AI gateways would "
    "refuse its token. Is this instance a copy of another one? Each instance needs its own activation."
)
NO_ACCESS = "The subscription has ended or the instance is suspended."


def _humanize(delta: dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def signing_key_too_early(key: SigningKey, action: str, at: dt.datetime | None = None) -> str | None:
    """Why activating or purging `key` at `at` is not yet safe (None when it is): the one rule behind `force`,
    shared by the services, the command line, the admin API and the keys page."""
    at = at or timezone.now()
    if action == "activate" and key.state == State.PENDING:
        published_for = at - key.created_at
        if published_for < issuer_settings.publish_lead:
            return (
                f"Key {key.kid} has been published for {_humanize(published_for)}; validators cache the JWKS, so it "
                f"may only sign after {_humanize(issuer_settings.publish_lead)} "
                f"(at {key.created_at + issuer_settings.publish_lead:%Y-%m-%d %H:%M} UTC)."
            )
    if action == "purge" and key.state == State.RETIRED:
        due = key.retired_at + issuer_settings.retire_overlap
        if at < due:
            return (
                f"Key {key.kid} retired at {key.retired_at:%Y-%m-%d %H:%M} UTC; tokens it signed may be verified "
                f"until {due:%Y-%m-%d %H:%M} UTC ({_humanize(due - at)} from now)."
            )
    return None


def _locked_key(kid: str) -> SigningKey:
    key = SigningKey.objects.select_for_update().filter(kid=kid).first()
    if key is None:
        raise SigningKeyRefused(f"No signing key with kid {kid!r}.")
    return key


@transaction.atomic
def signing_key_create(*, key_size: int | None = None, at: dt.datetime | None = None) -> SigningKey:
    """A new pending key: published in the JWKS at once, signing nothing until activated."""
    public_jwk, ciphertext = crypto.rsa_key_generate(key_size or issuer_settings.RSA_KEY_SIZE)
    key = SigningKey.objects.create(
        kid=public_jwk["kid"],
        key_size=key_size or issuer_settings.RSA_KEY_SIZE,
        public_jwk=public_jwk,
        private_key_encrypted=ciphertext,
        state=State.PENDING,
        created_at=at or timezone.now(),
    )
    logger.info("signing key created", extra={"kid": key.kid, "key_size": key.key_size})
    return key


@transaction.atomic
def signing_key_activate(kid: str, *, force: bool = False, at: dt.datetime | None = None) -> SigningKey:
    """pending → active; the previously active key → retired. Refused before the publish lead has passed, so no
    validator meets a token signed by a key it has not fetched yet — unless forced."""
    at = at or timezone.now()
    list(SigningKey.objects.select_for_update().filter(state__in=[State.ACTIVE, State.PENDING]))
    key = _locked_key(kid)
    if key.state != State.PENDING:
        raise SigningKeyRefused(f"Key {kid} is {key.state}; only a pending key can be activated.")
    too_early = signing_key_too_early(key, "activate", at)
    if too_early and not force:
        raise SigningKeyRefused(f"{too_early} Use force to activate now.")
    SigningKey.objects.filter(state=State.ACTIVE).update(state=State.RETIRED, retired_at=at)
    key.state, key.activated_at = State.ACTIVE, at
    key.save(update_fields=["state", "activated_at"])
    logger.info("signing key activated", extra={"kid": kid, "forced": force})
    return key


@transaction.atomic
def signing_key_retire(kid: str, *, at: dt.datetime | None = None) -> SigningKey:
    """A pending key that will not be used: it stays published through the overlap, then purge removes it.
    The active key is never retired alone (that would leave nothing to sign with): activate a successor."""
    key = _locked_key(kid)
    if key.state == State.ACTIVE:
        raise SigningKeyRefused(f"Key {kid} is the active key; activate another key to retire it.")
    if key.state != State.PENDING:
        raise SigningKeyRefused(f"Key {kid} is {key.state}; only a pending key can be retired.")
    key.state, key.retired_at = State.RETIRED, at or timezone.now()
    key.save(update_fields=["state", "retired_at"])
    return key


@transaction.atomic
def signing_key_revoke(kid: str, *, at: dt.datetime | None = None) -> SigningKey:
    """Emergency: out of the JWKS at once. If it was signing, the best available successor signs from now on
    (the oldest pending key, else a new key) and every token it signed is re-minted by the refresh job."""
    at = at or timezone.now()
    list(SigningKey.objects.select_for_update().filter(state__in=[State.ACTIVE, State.PENDING]))
    key = _locked_key(kid)
    if key.state == State.REVOKED:
        raise SigningKeyRefused(f"Key {kid} is already revoked.")
    was_active = key.state == State.ACTIVE
    key.state, key.revoked_at = State.REVOKED, at
    key.save(update_fields=["state", "revoked_at"])
    crypto.private_key_forget(kid)
    logger.warning("signing key revoked", extra={"kid": kid, "was_active": was_active})
    if was_active:
        successor = SigningKey.objects.filter(state=State.PENDING).order_by("created_at").first()
        successor = successor or signing_key_create(at=at)
        signing_key_activate(successor.kid, force=True, at=at)
    transaction.on_commit(_enqueue_refresh)
    return key


def _enqueue_refresh() -> None:
    from issuer.tasks import token_refresh

    token_refresh.delay()


@transaction.atomic
def signing_key_purge(kid: str, *, force: bool = False, at: dt.datetime | None = None) -> None:
    """Deletes a retired (or revoked) key. A retired key stays until token TTL + validator cache + skew have
    passed since it last signed, so every token it signed has expired everywhere — unless forced."""
    at = at or timezone.now()
    key = _locked_key(kid)
    if key.state == State.ACTIVE:
        raise SigningKeyRefused(f"Key {kid} is the active key and cannot be purged.")
    if key.state == State.PENDING:
        raise SigningKeyRefused(f"Key {kid} is pending; retire it first.")
    too_early = signing_key_too_early(key, "purge", at)
    if too_early and not force:
        raise SigningKeyRefused(f"{too_early} Use force to purge anyway.")
    key.delete()
    crypto.private_key_forget(kid)
    logger.info("signing key purged", extra={"kid": kid, "forced": force})


@transaction.atomic
def signing_keys_rewrap() -> int:
    """Re-encrypts every private key and stored token with the primary key-encryption key."""
    count = 0
    for key in SigningKey.objects.select_for_update().only("pk", "private_key_encrypted"):
        SigningKey.objects.filter(pk=key.pk).update(private_key_encrypted=encryption.rewrap(key.private_key_encrypted))
        count += 1
    for token in IssuedToken.objects.filter(token_encrypted__isnull=False).only("pk", "token_encrypted").iterator():
        IssuedToken.objects.filter(pk=token.pk).update(token_encrypted=encryption.rewrap(token.token_encrypted))
    return count


@transaction.atomic
def signing_key_ensure_active(*, at: dt.datetime | None = None) -> SigningKey:
    """A first start (or a start after every key was revoked) gets an active key at once: nothing to overlap."""
    active = SigningKey.objects.filter(state=State.ACTIVE).first()
    if active:
        return active
    _lock("signing_key_policy")
    active = SigningKey.objects.filter(state=State.ACTIVE).first()
    if active:
        return active
    candidate = SigningKey.objects.filter(state=State.PENDING).order_by("created_at").first()
    candidate = candidate or signing_key_create(at=at)
    return signing_key_activate(candidate.kid, force=True, at=at)


def job_record_success(name: str, *, at: dt.datetime) -> None:
    """Seen in /metrics as the job's last success (and, for the refresh, its lag)."""
    JobLock.objects.update_or_create(name=name, defaults={"last_success_at": at})


def _lock(name: str) -> JobLock:
    lock, _ = JobLock.objects.get_or_create(name=name)
    return JobLock.objects.select_for_update().get(name=name)


@dataclass
class PolicyReport:
    actions: list[str] = field(default_factory=list)


@transaction.atomic
def signing_key_policy_run(*, at: dt.datetime | None = None) -> PolicyReport:
    """The rotation policy; idempotent, and serialized by a row lock so two runs cannot double-act.

    Create a pending key when the active one is older than rotation period − publish lead; activate it once
    both the lead and the period have passed; purge retired keys past their overlap.
    """
    at = at or timezone.now()
    lock = _lock("signing_key_policy")
    report = PolicyReport()
    active = SigningKey.objects.filter(state=State.ACTIVE).first()
    if active is None:
        active = signing_key_ensure_active(at=at)
        report.actions.append(f"bootstrapped {active.kid}")
    pending = SigningKey.objects.filter(state=State.PENDING).order_by("created_at").first()
    settings_ = issuer_settings
    if pending is None and at >= active.activated_at + settings_.rotation_period - settings_.publish_lead:
        pending = signing_key_create(at=at)
        report.actions.append(f"created {pending.kid}")
    if (
        pending is not None
        and at >= pending.created_at + settings_.publish_lead
        and at >= active.activated_at + settings_.rotation_period
    ):
        signing_key_activate(pending.kid, at=at)
        report.actions.append(f"activated {pending.kid}, retired {active.kid}")
    for key in SigningKey.objects.filter(state=State.RETIRED, retired_at__lte=at - settings_.retire_overlap):
        signing_key_purge(key.kid, at=at)
        report.actions.append(f"purged {key.kid}")
    lock.last_success_at = at
    lock.save(update_fields=["last_success_at"])
    return report


# --- tokens ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MintedToken:
    record: IssuedToken
    token: str  # the JWT; handed to the instance, never logged


def _active_signing_key() -> tuple[str, object]:
    """The active key, as the key set says (every process sees a key change within a second); the database is
    read only when this process has not decrypted that key yet."""
    kid = keyset().active_kid
    loaded = crypto.private_key_loaded(kid) if kid else None
    if loaded is not None:
        return kid, loaded
    key = SigningKey.objects.filter(kid=kid, state=State.ACTIVE).only("kid", "private_key_encrypted").first()
    if key is None:  # the cached key set is behind; read the truth
        keyset_invalidate()
        key = SigningKey.objects.filter(state=State.ACTIVE).only("kid", "private_key_encrypted").first()
        if key is None:
            raise SigningKeyRefused("There is no active signing key.")
    return key.kid, crypto.private_key_load(key.kid, key.private_key_encrypted)


def _claims(entitlements: Entitlements, issued_at: int, jti: uuid.UUID, settings_) -> dict:
    return {
        "iss": settings.ISSUER_URL,
        "aud": list(entitlements.grant.audiences),
        "sub": entitlements.instance_identifier,
        "gitlab_instance_uid": entitlements.instance_identifier,
        "gitlab_realm": "self-managed",
        "scopes": list(entitlements.grant.scopes),
        "duo_seat_count": entitlements.duo_seat_count,
        "iat": issued_at,
        "nbf": issued_at - settings_.NBF_BACKDATE_SECONDS,
        "exp": issued_at + settings_.TOKEN_TTL_SECONDS,
        "jti": str(jti),
    }


def _sign(instance: Instance, entitlements: Entitlements, at: dt.datetime, reason: str, signer) -> MintedToken:
    kid, private_key = signer
    issued_at = int(at.timestamp())
    jti = uuid.uuid4()
    claims = _claims(entitlements, issued_at, jti, issuer_settings)
    token = jwt.encode(claims, private_key, algorithm="RS256", headers={"kid": kid, "typ": "JWT"})
    record = IssuedToken(
        jti=jti,
        instance=instance,
        kid=kid,
        scopes=claims["scopes"],
        audiences=claims["aud"],
        duo_seat_count=entitlements.duo_seat_count,
        issued_at=dt.datetime.fromtimestamp(issued_at, dt.UTC),
        expires_at=dt.datetime.fromtimestamp(claims["exp"], dt.UTC),
        fingerprint=entitlements.fingerprint,
        reason=reason,
        token_encrypted=encryption.encrypt(token.encode()),
    )
    metrics.tokens_issued.labels(reason=reason).inc()
    return MintedToken(record=record, token=token)


def service_access_token_issue(
    instance: Instance,
    *,
    entitlements: Entitlements | None = None,
    at: dt.datetime | None = None,
    reason: str = "manual",
) -> MintedToken:
    """Mints and records a ServiceAccessToken with the scopes the catalog grants the instance now."""
    at = at or timezone.now()
    entitlements = entitlements or instance_entitlements(instance, at)
    minted = _sign(instance, entitlements, at, reason, _active_signing_key())
    minted.record.save(force_insert=True)
    sync_state_forget([instance.license_key_digest])
    return minted


@dataclass(frozen=True)
class SyncResult:
    token: str | None  # None: no access (ended subscription, suspended instance): GitLab drops its tokens
    expires_at: dt.datetime | None
    scopes: tuple[str, ...] = ()
    audiences: tuple[str, ...] = ()
    kid: str | None = None


def _refusal_note(state: SyncState, message: str, at: dt.datetime) -> None:
    if instance_error_record(state.instance, message, at=at):
        sync_state_touch(state)


def service_access_token_sync(
    state: SyncState,
    *,
    gitlab_version: str = "",
    hostname: str = "",
    deployment_type: str = "",
    claimed_instance_id: str = "",
    at: dt.datetime | None = None,
) -> SyncResult:
    """What an instance gets when it syncs: its stored token while fresh, else a newly minted one.

    `claimed_instance_id` (X-Gitlab-Instance-Id), when sent, must be the bound instance: the AI gateway requires
    `sub` to equal it, so a token for another id would be refused there anyway (InstanceIdMismatch, and the
    foreign id is noted as a sign of a clone).
    Warm path: the sync state (cached, or three reads), no signing, and at most one write a minute.
    """
    at = at or timezone.now()
    instance = state.instance
    if claimed_instance_id and claimed_instance_id != str(instance.instance_identifier):
        instance_foreign_id_record(instance, claimed_instance_id, at=at)
        _refusal_note(state, INSTANCE_ID_MISMATCH, at)
        metrics.syncs.labels(result="instance_mismatch").inc()
        raise InstanceIdMismatch(INSTANCE_ID_MISMATCH)
    recorded = instance_sync_record(
        instance,
        gitlab_version=gitlab_version,
        hostname=hostname,
        deployment_type=deployment_type,
        seen_instance_id=claimed_instance_id,
        at=at,
    )
    if recorded is SyncRecord.TOUCHED:
        sync_state_touch(state)
    entitlements = instance_entitlements(instance, at)
    if not entitlements.access:
        _refusal_note(state, NO_ACCESS, at)
        metrics.syncs.labels(result="no_access").inc()
        return SyncResult(token=None, expires_at=None)
    newest = state.newest
    if newest is not None and token_is_fresh(
        fingerprint=newest.fingerprint,
        kid=newest.kid,
        expires_at=newest.expires_at,
        entitlements=entitlements,
        active_kid=keyset().active_kid,
        at=at,
    ):
        metrics.syncs.labels(result="stored").inc()
        return SyncResult(
            token=encryption.decrypt(newest.ciphertext).decode(),
            expires_at=newest.expires_at,
            scopes=newest.scopes,
            audiences=newest.audiences,
            kid=newest.kid,
        )
    minted = _sign(instance, entitlements, at, "sync", _active_signing_key())
    minted.record.save(force_insert=True)
    sync_state_replace_token(state, minted.record)  # the next sync finds this token without a query
    metrics.syncs.labels(result="minted").inc()
    record = minted.record
    return SyncResult(
        token=minted.token,
        expires_at=record.expires_at,
        scopes=tuple(record.scopes),
        audiences=tuple(record.audiences),
        kid=record.kid,
    )


# --- the refresh job ---------------------------------------------------------------------------------------


def _refreshable_instances():
    return Instance.objects.filter(subscription__isnull=False, suspended=False)


def token_refresh_plan(chunk_size: int | None = None) -> list[tuple[int, int]]:
    """Splits the instances into id ranges of at most `chunk_size`, for fanning out over workers."""
    chunk_size = chunk_size or issuer_settings.REFRESH_CHUNK_SIZE
    ids = _refreshable_instances().order_by("pk").values_list("pk", flat=True).iterator(chunk_size=10_000)
    ranges, chunk = [], []
    for pk in ids:
        chunk.append(pk)
        if len(chunk) == chunk_size:
            ranges.append((chunk[0], chunk[-1]))
            chunk = []
    if chunk:
        ranges.append((chunk[0], chunk[-1]))
    return ranges


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
        signer = signer or _active_signing_key()
        minted.append(
            _sign(instance, entitlements, at, _refresh_reason(instance, entitlements, active_kid, at), signer)
        )
    _insert_tokens([token.record for token in minted])
    sync_state_forget(token.record.instance.license_key_digest for token in minted)
    return len(minted)


_TOKEN_COLUMNS = [
    "jti",
    "instance_id",
    "kid",
    "scopes",
    "audiences",
    "duo_seat_count",
    "issued_at",
    "expires_at",
    "fingerprint",
    "reason",
    "token_encrypted",
]


def _insert_tokens(records: list[IssuedToken]) -> None:
    """Many token records at once: PostgreSQL's COPY (a third of the refresh job's time went into building and
    parsing one huge INSERT), `bulk_create` elsewhere."""
    if not records:
        return
    if connection.vendor != "postgresql":
        IssuedToken.objects.bulk_create(records, batch_size=500)
        return
    from psycopg.types.json import Jsonb

    table = IssuedToken._meta.db_table
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(
            f"COPY {table} ({', '.join(_TOKEN_COLUMNS)}) FROM STDIN"  # noqa: S608 (constant names)
        ) as copy,
    ):
        for r in records:
            copy.write_row(
                (
                    r.jti,
                    r.instance_id,
                    r.kid,
                    Jsonb(r.scopes, dumps=orjson.dumps),
                    Jsonb(r.audiences, dumps=orjson.dumps),
                    r.duo_seat_count,
                    r.issued_at,
                    r.expires_at,
                    r.fingerprint,
                    r.reason,
                    r.token_encrypted,
                )
            )


def _refresh_reason(instance, entitlements: Entitlements, active_kid: str | None, at: dt.datetime) -> str:
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
