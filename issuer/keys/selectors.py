"""Reads of the keys: the published key set (JWKS, discovery) cached per key change, the timeline, the readiness
probe, and the one public description of a key that every door prints."""

import datetime as dt
import functools
import hashlib
import json
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY

from config.health import readiness_probe
from config.signed_cache import signed_cache_get, signed_cache_set
from issuer.conf import issuer_settings
from issuer.jobs import job_pending_since
from issuer.keys.hsm import hsm_reachable
from issuer.keys.policy import signing_key_activation_due_at, signing_key_purge_due_at, signing_key_too_early
from issuer.models import SigningKey, Validator

KEYSET_CACHE_KEY = "issuer:keyset:v3"  # v3: plain data with an HMAC (config/signed_cache.py), never a pickle
# Without a shared cache another process (CLI, worker) cannot invalidate ours: bound the staleness instead.
LOCAL_KEYSET_SECONDS = 5
# With one, every key change drops it at once; it still expires (a signed value has a lifetime), and is rebuilt
# with one query.
SHARED_KEYSET_SECONDS = 86400
# Each process also keeps the key set in memory this long, so the public endpoints make no network call at all;
# a change made by another process therefore shows within a second (this process's own changes at once).
MEMO_SECONDS = 1.0
# What may be said of a key anywhere (command, API, pages): never its private part.
# The backend says where the private key is; a PKCS#11 key's label finds its object in the token (`pkcs11-tool`).
SIGNING_KEY_FIELDS = [
    "kid",
    "state",
    "backend",
    "token_key_label",
    "algorithm",
    "key_size",
    "created_at",
    "activated_at",
    "retired_at",
    "revoked_at",
]


@dataclass(frozen=True)
class KeySet:
    """What every public request needs, serialized once per key change."""

    jwks_body: bytes
    jwks_etag: str
    active_kid: str | None
    kids: tuple[str, ...] = ()  # of the published keys, as the JWKS lists them


def _build_keyset() -> KeySet:
    keys = list(
        SigningKey.objects.filter(state__in=SigningKey.PUBLISHED_STATES)
        .order_by("created_at", "id")
        .values("kid", "state", "public_jwk")
    )
    jwks = {"keys": [key["public_jwk"] for key in keys]}
    body = json.dumps(jwks, separators=(",", ":")).encode()
    active = next((key["kid"] for key in keys if key["state"] == SigningKey.State.ACTIVE), None)
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    return KeySet(jwks_body=body, jwks_etag=etag, active_kid=active, kids=tuple(key["kid"] for key in keys))


_memo: dict[str, tuple[float, KeySet]] = {}


def _keyset_cached() -> KeySet | None:
    """The key set in the cache, if it is one we wrote (HMAC verified before anything is read): else a miss."""
    found = signed_cache_get(KEYSET_CACHE_KEY)
    try:
        body, etag, active_kid, kids = found
        return KeySet(jwks_body=body.encode(), jwks_etag=etag, active_kid=active_kid, kids=tuple(kids))
    except (TypeError, ValueError, AttributeError):  # a miss (None), or a value of another shape
        return None


def keyset() -> KeySet:
    now = time.monotonic()
    memo = _memo.get(KEYSET_CACHE_KEY)
    if memo is not None and now - memo[0] < MEMO_SECONDS:
        return memo[1]
    current = _keyset_cached()
    if current is None:
        current = _build_keyset()
        signed_cache_set(
            KEYSET_CACHE_KEY,
            [current.jwks_body.decode(), current.jwks_etag, current.active_kid, list(current.kids)],
            SHARED_KEYSET_SECONDS if settings.CACHE_IS_SHARED else LOCAL_KEYSET_SECONDS,
        )
    _memo[KEYSET_CACHE_KEY] = (now, current)
    return current


def keyset_invalidate() -> None:
    _memo.clear()
    cache.delete(KEYSET_CACHE_KEY)


@functools.cache
def _discovery(issuer_url: str) -> tuple[bytes, str]:
    document = {
        "issuer": issuer_url,
        "jwks_uri": f"{issuer_url}/oauth/discovery/keys",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": [
            "iss",
            "sub",
            "aud",
            "exp",
            "nbf",
            "iat",
            "jti",
            "scopes",
            "gitlab_realm",
            "gitlab_instance_uid",
            "duo_seat_count",
        ],
    }
    body = json.dumps(document, separators=(",", ":")).encode()
    return body, f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def discovery_document_body() -> tuple[bytes, str]:
    """The discovery document and its ETag; it only depends on ISSUER_URL."""
    return _discovery(settings.ISSUER_URL)


def signing_keys_published():
    return SigningKey.objects.filter(state__in=SigningKey.PUBLISHED_STATES)


def signing_key_describe(key: SigningKey) -> dict:
    """A key as JSON-ready public facts (times in ISO 8601)."""
    values = {name: getattr(key, name) for name in SIGNING_KEY_FIELDS}
    return {name: value.isoformat() if isinstance(value, dt.datetime) else value for name, value in values.items()}


def signing_key_revocation_outcome() -> dict:
    """What an operator needs to hear after a revoke: which key signs now, and whether the re-mint of every token
    the revoked key signed was queued or waits for the next refresh run (broker unreachable)."""
    return {
        "signing_now": keyset().active_kid,
        "remint": "pending" if job_pending_since("token_refresh") else "queued",
    }


@dataclass(frozen=True)
class KeyTimelineEntry:
    key: SigningKey
    activation_due: dt.datetime | None  # pending: when the policy will activate it
    purge_due: dt.datetime | None  # retired: when it leaves the JWKS


def signing_key_timeline() -> list[KeyTimelineEntry]:
    """Every key with the moments the policy will act on it."""
    keys = list(SigningKey.objects.order_by("created_at", "id"))
    active = next((key for key in keys if key.state == SigningKey.State.ACTIVE), None)
    entries = []
    for key in keys:
        activation_due = purge_due = None
        if key.state == SigningKey.State.PENDING:
            activation_due = signing_key_activation_due_at(key, active)
        elif key.state == SigningKey.State.RETIRED:
            purge_due = signing_key_purge_due_at(key)
        entries.append(KeyTimelineEntry(key=key, activation_due=activation_due, purge_due=purge_due))
    return entries


@readiness_probe
def signing_key_readiness():
    """/readyz: tokens can only be issued with an active key."""
    try:
        ok = SigningKey.objects.filter(state=SigningKey.State.ACTIVE).exists()
    except Exception as error:
        return "signing_key", False, type(error).__name__
    return "signing_key", ok, "ok" if ok else "no active signing key"


@readiness_probe
def signing_token_readiness():
    """/readyz: the PKCS#11 token, where new keys are made there or a published key lives there (a round trip to
    it: a session lost shows here, and the probe's own call re-opens it once the token is back)."""
    try:
        in_token = SigningKey.objects.filter(
            backend=SigningKey.Backend.PKCS11, state__in=SigningKey.PUBLISHED_STATES
        ).exists()
    except Exception as error:
        return "signing_token", False, type(error).__name__
    if not in_token and settings.ISSUER_SIGNING_KEY_BACKEND != SigningKey.Backend.PKCS11:
        return "signing_token", True, "not used"
    ok, detail = hsm_reachable()
    return "signing_token", ok, detail


def signing_key_refusal(key: SigningKey, action: str, at) -> str | None:
    """Why the policy would refuse `action` on `key` now (None: it would not), as the service decides it."""
    signing = SigningKey.objects.filter(state=SigningKey.State.ACTIVE).exclude(pk=key.pk).exists()
    return signing_key_too_early(key, action, at, signing=signing)


def validators_seen(at: dt.datetime):
    """Validators seen within ISSUER_VALIDATOR_FORGET_DAYS (the others no longer count), newest first."""
    forget = dt.timedelta(days=issuer_settings.VALIDATOR_FORGET_DAYS)
    return Validator.objects.filter(last_seen_at__gte=at - forget).order_by("-last_seen_at")


def validators_lagging(kid: str, at: dt.datetime) -> list[Validator]:
    """Confirmed validators seen lately whose last key set did not contain `kid` (the set can only hold it once
    published). Unconfirmed ones are telemetry: anyone can fetch the JWKS, and no anonymous caller may brake."""
    return [validator for validator in validators_seen(at).filter(confirmed=True) if kid not in validator.kids]


def validators_blocking(at: dt.datetime, *, longer_than: dt.timedelta = dt.timedelta(days=1)) -> list[Validator]:
    """Validators holding the pending key's activation back for more than `longer_than` past its due time."""
    pending = SigningKey.objects.filter(state=SigningKey.State.PENDING).order_by("created_at").first()
    if pending is None:
        return []
    active = SigningKey.objects.filter(state=SigningKey.State.ACTIVE).first()
    if at < signing_key_activation_due_at(pending, active) + longer_than:
        return []
    return validators_lagging(pending.kid, at)


@dataclass(frozen=True)
class ValidatorRow:
    validator: Validator
    has_pending: bool | None  # None: no pending key


def validator_rows(at: dt.datetime) -> list[ValidatorRow]:
    """The keys page's validators: who fetched lately, and whether its last set held the pending key."""
    pending = SigningKey.objects.filter(state=SigningKey.State.PENDING).order_by("created_at").first()
    return [
        ValidatorRow(validator, (pending.kid in validator.kids) if pending else None)
        for validator in validators_seen(at)
    ]


class KeyPolicyCollector:
    """/metrics, read at scrape time: how overdue the pending key's activation and the retired keys' purges are,
    and the validators (seen, lagging on the pending key, holding its activation back for over a day)."""

    def describe(self):
        return self._families()

    @staticmethod
    def _families():
        return (
            GaugeMetricFamily(
                "issuer_signing_key_activation_overdue_seconds",
                "Seconds since the pending key's activation fell due (0: none due)",
            ),
            GaugeMetricFamily(
                "issuer_signing_key_purge_overdue_seconds", "Seconds since the oldest retired key's purge fell due"
            ),
            GaugeMetricFamily("issuer_validators_seen", "Validators seen within the forget window"),
            GaugeMetricFamily(
                "issuer_validators_lagging_pending_key", "Validators whose last key set lacks the pending key"
            ),
            GaugeMetricFamily(
                "issuer_validators_blocking_activation", "Validators holding activation back over a day past due"
            ),
        )

    def collect(self):
        activation, purge, seen, lagging, blocking = self._families()
        now = timezone.now()
        try:
            timeline = signing_key_timeline()
            due = [entry.activation_due for entry in timeline if entry.activation_due]
            purges = [entry.purge_due for entry in timeline if entry.purge_due]
            activation.add_metric([], max((now - min(due)).total_seconds(), 0) if due else 0)
            purge.add_metric([], max((now - min(purges)).total_seconds(), 0) if purges else 0)
            pending = next((entry.key for entry in timeline if entry.key.state == SigningKey.State.PENDING), None)
            seen.add_metric([], validators_seen(now).count())
            lagging.add_metric([], len(validators_lagging(pending.kid, now)) if pending else 0)
            blocking.add_metric([], len(validators_blocking(now)))
        except Exception:  # a scrape must never fail the endpoint (e.g. before migrations)
            return
        yield from (activation, purge, seen, lagging, blocking)


REGISTRY.register(KeyPolicyCollector())
