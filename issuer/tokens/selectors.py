"""Reads of the tokens: when a stored token may be handed out again, the newest token of many instances at once,
and our own verifier (support, the inspect form, the instance diagnosis)."""

import datetime as dt
from typing import NamedTuple

import jwt
from django.conf import settings
from django.db.models import Exists, OuterRef

from issuer.conf import issuer_settings
from issuer.keys.selectors import signing_keys_published
from issuer.models import IssuedToken
from subscriptions.models import Instance


class NewestInWindow(NamedTuple):
    fingerprint: str
    kid: str
    expires_at: dt.datetime


def freshness_window_start(at: dt.datetime) -> dt.datetime:
    """Tokens issued before this cannot be fresh at `at`: they have at most the refresh threshold left (a token
    lives TOKEN_TTL_SECONDS). Bounding a lookup by it lets PostgreSQL read one or two monthly partitions instead of
    every month kept. Should the TTL have been longer when a token was issued, that token is only minted again once
    too early: the bound never lets a token that is not fresh pass for fresh."""
    return at - (issuer_settings.token_ttl - issuer_settings.refresh_threshold)


def newest_tokens_in_window(first_id: int, last_id: int, at: dt.datetime) -> dict[int, NewestInWindow]:
    """The newest token of each instance with an id in [first_id, last_id] among those that can still be fresh at
    `at`: one query for a batch, over the partitions of the window only (a correlated lookup per instance probes
    every month's index)."""
    rows = (
        IssuedToken.objects.filter(
            instance_id__gte=first_id, instance_id__lte=last_id, issued_at__gte=freshness_window_start(at)
        )
        .order_by("instance_id", "-issued_at")
        .values_list("instance_id", "fingerprint", "kid", "expires_at")
    )
    newest: dict[int, NewestInWindow] = {}
    for instance_id, fingerprint, kid, expires_at in rows:
        newest.setdefault(instance_id, NewestInWindow(fingerprint, kid, expires_at))
    return newest


def instances_with_tokens_before(first_id: int, last_id: int, before: dt.datetime) -> set[int]:
    """The instances with an id in [first_id, last_id] that were issued a token before `before`: an indexed probe
    each over the months before it only, stopping at the first record found. (Filtering on the EXISTS would let
    PostgreSQL turn it into a join that reads every record of the table.)"""
    has_token = Exists(IssuedToken.objects.filter(instance=OuterRef("pk"), issued_at__lt=before))
    rows = (
        Instance.objects.filter(pk__gte=first_id, pk__lte=last_id)
        .annotate(has_token=has_token)
        .order_by()
        .values_list("pk", "has_token")
    )
    return {pk for pk, has in rows if has}


def token_is_fresh(*, fingerprint, kid, expires_at, entitlements, active_kid, at: dt.datetime) -> bool:
    """A stored token may be handed out (or left alone by the refresh job) only while this holds."""
    return (
        fingerprint == entitlements.fingerprint
        and kid is not None
        and kid == active_kid
        and expires_at is not None
        and expires_at - at > issuer_settings.refresh_threshold
    )


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


# Why a token was minted (IssuedToken.reason): the inline sync, the refresh job's four reasons, and by hand.
TOKEN_REASONS = ("sync", "refresh_first", "refresh_entitlements", "refresh_key", "refresh_expiry", "manual")


def tokens_with_uuid(tokens, term: str):
    """The token records of the instance with that id, else the record with that jti: one indexed lookup each.
    (An OR of both makes PostgreSQL walk every record in time order looking for a rare match.)"""
    instance = Instance.objects.filter(instance_identifier=term).values_list("pk", flat=True).first()
    return tokens.filter(instance_id=instance) if instance is not None else tokens.filter(jti=term)
