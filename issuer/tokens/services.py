"""Writes of the tokens: claims, signing and recording a ServiceAccessToken (PROTOCOL §3), and the sync every door
(GraphQL, REST) answers an instance with."""

import datetime as dt
import uuid
from dataclasses import dataclass
from functools import cached_property

import orjson
from django.conf import settings
from django.db import connection
from django.db.models import JSONField
from django.utils import timezone
from psycopg.types.json import Jsonb

from audit.services import not_audited
from config.postgres import prepared_cursor
from issuer import metrics
from issuer.conf import issuer_settings
from issuer.keys import encryption
from issuer.keys.hsm import TokenUnavailable
from issuer.keys.selectors import keyset, keyset_invalidate
from issuer.keys.services import SigningKeyBackendUnavailable, SigningKeyRefused
from issuer.keys.signers import Signer, signer_for, signer_loaded
from issuer.models import IssuedToken, SigningKey
from issuer.sync_state.store import SyncState, sync_state_expected_back, sync_state_settle
from issuer.tokens.jws import jws_compact
from issuer.tokens.selectors import token_is_fresh
from subscriptions.instance_ids import instance_id_matches
from subscriptions.models import Instance
from subscriptions.selectors import Entitlements, instance_entitlements
from subscriptions.services import (
    SyncObservation,
    SyncRecord,
    instance_foreign_id_record,
    instance_sync_observed,
    sync_observation_start,
)


class InstanceIdMismatch(Exception):
    """A sync whose X-Gitlab-Instance-Id is not the instance the license key is bound to (a cloned instance)."""


INSTANCE_ID_MISMATCH = (
    "X-Gitlab-Instance-Id does not match the instance this license key was activated for, so AI gateways would "
    "refuse its token. Is this instance a copy of another one? Each instance needs its own activation."
)
NO_ACCESS = "The subscription has ended or the instance is suspended."


@dataclass(frozen=True)
class MintedToken:
    token: str  # the JWT; handed to the instance, never logged
    columns: dict  # its record's values by attribute name: what the refresh job COPYs, without a model per token

    @cached_property
    def record(self) -> IssuedToken:
        """The (unsaved) record, built when asked for: a sync saves it and keeps it in the sync state."""
        return IssuedToken(**self.columns)


@not_audited("reads the active key")
def signer_active() -> Signer:
    """The active key's signer, as the key set says (every process sees a key change within a second); the
    database is read only when this process has no signer for that key yet."""
    kid = keyset().active_kid
    loaded = signer_loaded(kid) if kid else None
    if loaded is not None:
        return loaded
    key = SigningKey.objects.filter(kid=kid, state=SigningKey.State.ACTIVE).first()
    if key is None:  # the cached key set is behind; read the truth
        keyset_invalidate()
        key = SigningKey.objects.filter(state=SigningKey.State.ACTIVE).first()
        if key is None:
            raise SigningKeyRefused("There is no active signing key.")
    try:
        return signer_for(key)
    except encryption.KeyEncryptionError as error:
        raise SigningKeyRefused(
            f"The active signing key cannot be decrypted here ({error}); deploy the current KEY_ENCRYPTION_KEYS."
        ) from None


def _claims(entitlements: Entitlements, issued_at: int, jti: uuid.UUID) -> dict:
    return {
        "iss": settings.ISSUER_URL,
        "aud": list(entitlements.grant.audiences),
        "sub": entitlements.instance_identifier,
        "gitlab_instance_uid": entitlements.instance_identifier,
        "gitlab_realm": "self-managed",
        "scopes": list(entitlements.grant.scopes),
        "duo_seat_count": entitlements.duo_seat_count,
        "iat": issued_at,
        "nbf": issued_at - issuer_settings.NBF_BACKDATE_SECONDS,
        "exp": issued_at + issuer_settings.TOKEN_TTL_SECONDS,
        "jti": str(jti),
    }


@not_audited("writes nothing: the caller saves the token record")
def service_access_token_sign(
    instance: Instance, entitlements: Entitlements, *, at: dt.datetime, reason: str, signer: Signer
) -> MintedToken:
    """A signed token and its (unsaved) record: the caller saves one, or the refresh job many at once."""
    issued_at = int(at.timestamp())
    jti = uuid.uuid4()
    claims = _claims(entitlements, issued_at, jti)
    # The claims as serialised by orjson (a fraction of the cost of `json.dumps`), signed by the key's backend.
    try:
        token = jws_compact(orjson.dumps(claims), signer)
    except TokenUnavailable as error:  # the doors answer 503 with Retry-After; the job's chunk is retried
        raise SigningKeyBackendUnavailable(f"The active key's PKCS#11 token cannot sign now: {error}") from None
    columns = {
        "jti": jti,
        "instance_id": instance.pk,
        "kid": signer.kid,
        "scopes": claims["scopes"],
        "audiences": claims["aud"],
        "duo_seat_count": entitlements.duo_seat_count,
        "issued_at": dt.datetime.fromtimestamp(issued_at, dt.UTC),
        "expires_at": dt.datetime.fromtimestamp(claims["exp"], dt.UTC),
        "fingerprint": entitlements.fingerprint,
        "reason": reason,
        "token_encrypted": encryption.encrypt(token.encode()),
    }
    metrics.tokens_issued.labels(reason=reason).inc()
    return MintedToken(token=token, columns=columns)


@dataclass(frozen=True)
class SyncResult:
    token: str | None  # None: no access (ended subscription, suspended instance): GitLab drops its tokens
    expires_at: dt.datetime | None
    scopes: tuple[str, ...] = ()
    audiences: tuple[str, ...] = ()
    kid: str | None = None


def _stored_token(newest) -> str | None:
    """The stored token's text, or None when this process cannot decrypt it (its key-encryption keys are older
    than the rewrap that re-encrypted it): such a token is treated as not fresh and minted again."""
    try:
        return encryption.decrypt(newest.ciphertext).decode()
    except encryption.KeyEncryptionError:
        return None


def _token_record_insert(minted: MintedToken) -> None:
    """A minted token's record, committed without waiting for the write-ahead log's flush (PostgreSQL's
    synchronous_commit off, for this transaction only). A crash may lose the records of the last moments, never a
    token's validity: the instance holds its token, and a lost record only means its next sync mints again.

    On PostgreSQL one statement, its own transaction, sets it and inserts: one round trip where BEGIN, SET LOCAL,
    INSERT and COMMIT were four, a third of a minting sync."""
    if connection.vendor != "postgresql":
        minted.record.save(force_insert=True)
        return
    fields = IssuedToken._meta.concrete_fields
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    values = [
        Jsonb(minted.columns[field.attname], dumps=orjson.dumps)
        if isinstance(field, JSONField)
        else minted.columns[field.attname]
        for field in fields
    ]
    table = connection.ops.quote_name(IssuedToken._meta.db_table)
    placeholders = ", ".join(["%s"] * len(values))
    insert = (  # the model's own names; the values are parameters
        "WITH asynchronous AS (SELECT set_config('synchronous_commit', 'off', true)) "  # noqa: S608
        f"INSERT INTO {table} ({columns}) SELECT {placeholders} FROM asynchronous"
    )
    with prepared_cursor() as cursor:
        cursor.execute(insert, values)


@not_audited("every minted token is its own record (IssuedToken); the rest is an instance's bookkeeping")
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
    What the sync saw (the instance's version, host name and headers, a refusal) is gathered as it goes and written
    once at the end, in one statement and only when something changed or is due (`instance_sync_observed`); the
    cached state likewise once, when the cache did not hold it as it now is (`sync_state_settle`).
    Warm path: the sync state (cached, or three reads), no signing, and at most one write a minute.
    """
    at = at or timezone.now()
    instance = state.instance
    observation = sync_observation_start(
        instance,
        gitlab_version=gitlab_version,
        hostname=hostname,
        deployment_type=deployment_type,
        seen_instance_id=claimed_instance_id,
    )
    if claimed_instance_id and not instance_id_matches(claimed_instance_id, instance.instance_identifier):
        instance_foreign_id_record(instance, claimed_instance_id, at=at)
        observation.refused(INSTANCE_ID_MISMATCH)
        _observed(state, observation, at, synced=False)
        metrics.syncs.labels(result="instance_mismatch").inc()
        raise InstanceIdMismatch(INSTANCE_ID_MISMATCH)
    entitlements = instance_entitlements(instance, at)
    if not entitlements.access:
        observation.refused(NO_ACCESS)
        _observed(state, observation, at)
        metrics.syncs.labels(result="no_access").inc()
        return SyncResult(token=None, expires_at=None)
    newest = state.newest
    fresh = newest is not None and token_is_fresh(
        fingerprint=newest.fingerprint,
        kid=newest.kid,
        expires_at=newest.expires_at,
        entitlements=entitlements,
        active_kid=keyset().active_kid,
        at=at,
    )
    stored = _stored_token(newest) if fresh else None  # decrypted only when it would be handed out
    if stored is not None:
        _observed(state, observation, at)
        metrics.syncs.labels(result="stored").inc()
        return SyncResult(
            token=stored, expires_at=newest.expires_at, scopes=newest.scopes, audiences=newest.audiences, kid=newest.kid
        )
    minted = service_access_token_sign(instance, entitlements, at=at, reason="sync", signer=signer_active())
    _token_record_insert(minted)
    _observed(state, observation, at, minted=minted.record)  # the next sync finds this token without a query
    metrics.syncs.labels(result="minted").inc()
    record = minted.record
    return SyncResult(
        token=minted.token,
        expires_at=record.expires_at,
        scopes=tuple(record.scopes),
        audiences=tuple(record.audiences),
        kid=record.kid,
    )


def _observed(
    state: SyncState, observation: SyncObservation, at: dt.datetime, *, synced: bool = True, minted=None
) -> None:
    """The end of a sync: what it saw recorded (one statement, when due), then the cached state settled (one
    write, when the cache does not hold it as it now is and somebody is expected back to read it)."""
    recorded = instance_sync_observed(state.instance, observation, at=at, synced=synced)
    if recorded is not SyncRecord.CHANGED:  # a change started a new generation: nothing of this state is served
        sync_state_settle(
            state,
            changed=recorded is SyncRecord.TOUCHED,
            minted=minted,
            expected_back=sync_state_expected_back(observation.previous_sync_at, at),
        )
