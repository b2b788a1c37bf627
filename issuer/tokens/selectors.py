"""Reads of the tokens: when a stored token may be handed out again, the newest token of many instances at once,
and our own verifier (support, the inspect form, the instance diagnosis)."""

import datetime as dt

import jwt
from django.conf import settings
from django.db.models import OuterRef, Subquery

from issuer.conf import issuer_settings
from issuer.keys.selectors import signing_keys_published
from issuer.models import IssuedToken
from subscriptions.models import Instance


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
