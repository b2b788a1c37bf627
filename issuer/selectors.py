"""Reads: the published key set (JWKS, discovery), the active key, token verification, refresh candidates."""

import datetime as dt
import functools
import hashlib
import json
import time
from dataclasses import dataclass

import jwt
from django.conf import settings
from django.core.cache import cache
from django.db.models import OuterRef, Q, Subquery

from issuer import encryption
from issuer.conf import issuer_settings
from issuer.models import IssuedToken, SigningKey
from subscriptions.models import Customer, Instance, Subscription
from subscriptions.selectors import instance_ids_seen, instances_cloned_count

KEYSET_CACHE_KEY = "issuer:keyset:v1"
# Without a shared cache another process (CLI, worker) cannot invalidate ours: bound the staleness instead.
LOCAL_KEYSET_SECONDS = 5
# Each process also keeps the key set in memory this long, so the public endpoints make no network call at all;
# a change made by another process therefore shows within a second (this process's own changes at once).
MEMO_SECONDS = 1.0


@dataclass(frozen=True)
class KeySet:
    """What every public request needs, serialized once per key change."""

    jwks_body: bytes
    jwks_etag: str
    active_kid: str | None


def _build_keyset() -> KeySet:
    keys = list(
        SigningKey.objects.filter(state__in=SigningKey.PUBLISHED_STATES)
        .order_by("created_at", "id")
        .values("kid", "state", "public_jwk")
    )
    jwks = {"keys": [key["public_jwk"] for key in keys]}
    body = json.dumps(jwks, separators=(",", ":")).encode()
    active = next((key["kid"] for key in keys if key["state"] == SigningKey.State.ACTIVE), None)
    return KeySet(jwks_body=body, jwks_etag=f'"{hashlib.sha256(body).hexdigest()[:32]}"', active_kid=active)


_memo: dict[str, tuple[float, KeySet]] = {}


def keyset() -> KeySet:
    now = time.monotonic()
    memo = _memo.get(KEYSET_CACHE_KEY)
    if memo is not None and now - memo[0] < MEMO_SECONDS:
        return memo[1]
    current = cache.get(KEYSET_CACHE_KEY)
    if current is None:
        current = _build_keyset()
        cache.set(KEYSET_CACHE_KEY, current, None if settings.CACHE_IS_SHARED else LOCAL_KEYSET_SECONDS)
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


class TokenInvalid(Exception):
    pass


def verify_service_access_token(token: str, *, audience: str | None = None, leeway: int = 30) -> dict:
    """Our own verifier: the key by `kid` among published keys, RS256 only, `iss`, `aud`, time claims.

    Returns the claims, or raises `TokenInvalid` with the reason. Without `audience`, any audience is accepted
    (support and the admin inspect form), but `aud` must still be present.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise TokenInvalid(f"Not a JWT: {error}") from None
    if header.get("alg") != "RS256":
        raise TokenInvalid(f"Algorithm {header.get('alg')!r} is not allowed; only RS256.")
    key = signing_keys_published().filter(kid=str(header.get("kid", ""))).first()
    if key is None:
        raise TokenInvalid(f"Unknown or withdrawn key id {header.get('kid')!r}.")
    try:
        return jwt.decode(
            token,
            jwt.PyJWK(key.public_jwk).key,
            algorithms=["RS256"],
            issuer=settings.ISSUER_URL,
            audience=audience,
            leeway=leeway,
            options={
                "require": ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"],
                "verify_aud": audience is not None,
            },
        )
    except jwt.PyJWTError as error:
        raise TokenInvalid(str(error)) from None


def newest_token_annotations():
    """Annotations with the newest token's fingerprint, kid and expiry, for instance querysets."""
    newest = IssuedToken.objects.filter(instance=OuterRef("pk")).order_by("-issued_at")
    return {
        "newest_token_fingerprint": Subquery(newest.values("fingerprint")[:1]),
        "newest_token_kid": Subquery(newest.values("kid")[:1]),
        "newest_token_expires_at": Subquery(newest.values("expires_at")[:1]),
    }


def token_is_fresh(*, fingerprint, kid, expires_at, entitlements, active_kid, at: dt.datetime) -> bool:
    """A stored token may be handed out (or left alone by the refresh job) only while this holds."""
    return (
        fingerprint == entitlements.fingerprint
        and kid is not None
        and kid == active_kid
        and expires_at is not None
        and expires_at - at > issuer_settings.refresh_threshold
    )


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
            activation_due = key.created_at + issuer_settings.publish_lead
            if active is not None:
                activation_due = max(activation_due, active.activated_at + issuer_settings.rotation_period)
        elif key.state == SigningKey.State.RETIRED:
            purge_due = key.retired_at + issuer_settings.retire_overlap
        entries.append(KeyTimelineEntry(key=key, activation_due=activation_due, purge_due=purge_due))
    return entries


@dataclass(frozen=True)
class DashboardSummary:
    customers: int
    active_subscriptions: int
    instances_synced_24h: int
    stale_instances: int
    tokens_issued_24h: int
    cloned_instances: int


# GitLab treats its Cloud Connector access data as stale after 3 days (its Duo health check says so too).
STALE_AFTER = dt.timedelta(days=3)
AI_GATEWAY_AUDIENCE = "gitlab-ai-gateway"


@dataclass(frozen=True)
class DiagnosisCheck:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class InstanceDiagnosis:
    """GitLab's Duo health check seen from the issuer's side: what would make this instance's Duo fail."""

    checks: list[DiagnosisCheck]
    newest_token_expires_at: dt.datetime | None
    instance_ids_seen: list[dict]
    last_error: str
    last_error_at: dt.datetime | None

    @property
    def healthy(self) -> bool:
        return all(check.ok for check in self.checks)


def instance_diagnosis(instance: Instance, now: dt.datetime) -> InstanceDiagnosis:
    """Access data freshness, the newest token against the AI gateway's rules (PROTOCOL §7), clones, last error."""
    checks = [_freshness_check(instance, now)]
    newest = instance.issued_tokens.order_by("-issued_at").first()
    checks.extend(_gateway_checks(instance, newest, now))
    seen = instance_ids_seen(instance, now)
    foreign = [row["instance_id"] for row in seen if not row["own"]]
    checks.append(
        DiagnosisCheck(
            "one instance id per license key",
            not foreign,
            f"also used from {', '.join(foreign)}: newer AI gateways refuse those callers" if foreign else "yes",
        )
    )
    return InstanceDiagnosis(
        checks=checks,
        newest_token_expires_at=newest.expires_at if newest else None,
        instance_ids_seen=seen,
        last_error=instance.last_error,
        last_error_at=instance.last_error_at,
    )


def _freshness_check(instance, now: dt.datetime) -> DiagnosisCheck:
    if instance.last_sync_at is None:
        return DiagnosisCheck("access data fresh (synced within 3 days)", False, "never synced")
    age = now - instance.last_sync_at
    return DiagnosisCheck(
        "access data fresh (synced within 3 days)",
        age <= STALE_AFTER,
        f"last sync {age.days} days ago: GitLab considers its access data stale" if age > STALE_AFTER else "yes",
    )


def _gateway_checks(instance, newest, now: dt.datetime) -> list[DiagnosisCheck]:
    """The newest token as the AI gateway would judge it, when we still hold its text; else from its record."""
    if newest is None:
        return [DiagnosisCheck("a token has been issued", False, "no token yet")]
    if newest.token_encrypted is None:
        return [DiagnosisCheck("newest token still valid", False, f"expired at {newest.expires_at:%Y-%m-%d %H:%M} UTC")]
    token = encryption.decrypt(bytes(newest.token_encrypted)).decode()
    try:
        claims = verify_service_access_token(token, audience=AI_GATEWAY_AUDIENCE, leeway=0)
    except TokenInvalid as error:
        return [DiagnosisCheck("newest token passes the AI gateway", False, str(error))]
    identifier = str(instance.instance_identifier)
    claimed = instance.last_seen_instance_id or identifier
    return [
        DiagnosisCheck("newest token passes the AI gateway", True, f"signed by a published key, aud {claims['aud']}"),
        DiagnosisCheck(
            "gitlab_realm is self-managed",
            claims.get("gitlab_realm") == "self-managed",
            claims.get("gitlab_realm", "missing"),
        ),
        DiagnosisCheck(
            "sub and gitlab_instance_uid match X-Gitlab-Instance-Id",
            claims.get("sub") == claims.get("gitlab_instance_uid") == claimed,
            f"sub {claims.get('sub')}, instance id sent {claimed}",
        ),
    ]


def dashboard_summary(now: dt.datetime) -> DashboardSummary:
    """Counts for the dashboard: each one indexed aggregate, so the page stays fast with many instances."""
    today = now.date()
    bound = Instance.objects.filter(subscription__isnull=False)
    return DashboardSummary(
        customers=Customer.objects.count(),
        active_subscriptions=Subscription.objects.filter(
            suspended=False, starts_on__lte=today, expires_on__gt=today
        ).count(),
        instances_synced_24h=bound.filter(last_sync_at__gte=now - dt.timedelta(hours=24)).count(),
        stale_instances=bound.filter(
            Q(last_sync_at__lt=now - STALE_AFTER) | Q(last_sync_at__isnull=True, activated_at__lt=now - STALE_AFTER)
        ).count(),
        tokens_issued_24h=IssuedToken.objects.filter(issued_at__gte=now - dt.timedelta(hours=24)).count(),
        cloned_instances=instances_cloned_count(now),
    )
