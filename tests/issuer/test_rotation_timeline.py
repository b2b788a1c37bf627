"""200 simulated days: the policy runs hourly, a token is minted hourly, and AI gateways that re-fetch the JWKS only
every 24 hours (one gateway for each hour of the day; none re-fetches on an unknown kid) must accept every token for
its whole life. (A single gateway re-fetching in step with the rotation missed a publish lead of one hour.)

Away from the policy's transitions one hour repeats the next (the same key signs, the same keys are published), so
the walk takes those a day at a time and every hour within a day of each moment the policy announces
(`issuer.keys.policy`: a successor's creation, its activation, a retired key's purge). Should the policy act, or the
JWKS change, on a day's step, the walk would have skipped a transition: that fails the test.

Once with each signing-key backend, and across the move from local keys to the PKCS#11 token (docs/keys.md)."""

import datetime as dt
import math
from dataclasses import dataclass

import jwt
import pytest
import time_machine
from django.utils import timezone

from issuer.keys.policy import signing_key_successor_due_at
from issuer.keys.selectors import signing_key_timeline
from issuer.keys.services import signing_key_policy_run
from issuer.models import IssuedToken, SigningKey
from tests.helpers import mint_token

pytestmark = pytest.mark.django_db

HOUR = dt.timedelta(hours=1)
DAYS = 200
GATEWAY_CACHE_HOURS = 24
STEP_HOURS = 24  # away from transitions
MARGIN_HOURS = 24  # hour by hour this close to a transition


@dataclass
class Published:
    """The JWKS as served from `hour` on, as a gateway that fetched it then would hold it."""

    hour: int
    body: dict
    keys: jwt.PyJWKSet


@dataclass
class Minted:
    token: str
    kid: str
    hour: int
    expires: float


def verify(token: Minted, published: Published) -> None:
    """A gateway's check: the key by kid in its cached JWKS, PyJWT, RS256, its audience."""
    try:
        key = published.keys[token.kid]
    except KeyError:
        raise AssertionError(
            f"the JWKS served from hour {published.hour} on has no key {token.kid} (a token of hour {token.hour})"
        ) from None
    jwt.decode(token.token, key.key, algorithms=["RS256"], audience="gitlab-ai-gateway", leeway=0)


def announced_hours(start) -> set[int]:
    """The hours (from `start`, rounded up to the hourly run) of every moment the policy announces for the keys as
    they are now."""
    due = []
    for entry in signing_key_timeline():
        due += [moment for moment in (entry.activation_due, entry.purge_due) if moment is not None]
    active = SigningKey.objects.filter(state=SigningKey.State.ACTIVE).first()
    if active and not SigningKey.objects.filter(state=SigningKey.State.PENDING).exists():
        due.append(signing_key_successor_due_at(active))
    return {math.ceil((moment - start) / HOUR) for moment in due}


def next_hour(hour: int, transitions: set[int]) -> int:
    """The next hour the walk visits: the next one near a transition, else a day on (never past a margin's start)."""
    if any(abs(hour + 1 - transition) <= MARGIN_HOURS for transition in transitions):
        return hour + 1
    ahead = [transition - MARGIN_HOURS for transition in transitions if transition - MARGIN_HOURS > hour]
    return min([hour + STEP_HOURS, *ahead])


def _walk(client, instance, days: int, on_hour=None) -> tuple[list, int]:
    """`days` of the policy and minting, every token checked by the gateways; `on_hour(hour)` runs before each
    visited hour's policy run. Returns the failures and the number of verifications."""
    start = timezone.now().replace(minute=7, second=0, microsecond=0)
    history: list[Published] = []  # every change of the JWKS, in order
    live: list[Minted] = []
    transitions: set[int] = set()  # every hour the policy ever announced
    failures, verified, hour, previous = [], 0, 0, None
    with time_machine.travel(start, tick=False) as traveller:
        while hour < days * 24:
            now = start + hour * HOUR
            traveller.move_to(now)
            if on_hour is not None:
                on_hour(hour)
            report = signing_key_policy_run()
            body = client.get("/oauth/discovery/keys").json()
            changed = not history or body != history[-1].body
            if previous is not None and hour - previous > 1 and (report.actions or changed):
                failures.append((hour, f"acted on a day's step, away from every announced moment: {report.actions}"))
            live = [token for token in live if token.expires > now.timestamp()]
            checks = []
            if changed:
                history.append(Published(hour, body, jwt.PyJWKSet.from_dict(body)))
                # Each gateway re-fetches within a day of the change: every live token meets the new JWKS.
                checks += [(token, history[-1]) for token in live]
            minted = mint_token(instance, reason="timeline")
            claims = jwt.decode(minted.token, options={"verify_signature": False})
            token = Minted(minted.token, jwt.get_unverified_header(minted.token)["kid"], hour, claims["exp"])
            live.append(token)
            # At its birth the gateways hold the JWKS of each hour of the last day (one fetched at each hour).
            oldest = hour - (GATEWAY_CACHE_HOURS - 1)
            held = max((index for index, published in enumerate(history) if published.hour <= oldest), default=0)
            checks += [(token, published) for published in history[held:]]
            for candidate, published in checks:
                try:
                    verify(candidate, published)
                    verified += 1
                except Exception as error:  # collect them all, then fail with the list
                    failures.append((hour, repr(error)))
            transitions |= announced_hours(start)
            previous, hour = hour, next_hour(hour, transitions)
    return failures, verified


def test_two_hundred_days_of_rotation_without_a_single_rejected_token(signing_backend, client, activated):
    instance, _ = activated
    failures, verified = _walk(client, instance, DAYS)
    assert failures == []
    signing_kids = set(IssuedToken.objects.values_list("kid", flat=True))
    assert len(signing_kids) >= 3, "at least two rotations in 200 days"
    published = set(SigningKey.objects.values_list("kid", flat=True))
    assert signing_kids - published, "keys retired long enough ago were purged from the JWKS"
    assert verified > IssuedToken.objects.filter(reason="timeline").count(), "live tokens met each new JWKS"


@pytest.mark.usefixtures("local_signing_keys")
def test_moving_from_local_keys_to_the_token_by_rotation_rejects_no_token(client, activated, pkcs11_token, settings):
    """The documented move: set ISSUER_SIGNING_KEY_BACKEND=pkcs11 and let the policy rotate. The next key is made
    in the token, published ahead as usual, activated; the local key retires and is purged after its overlap."""
    instance, _ = activated
    local = SigningKey.objects.get(state=SigningKey.State.ACTIVE)
    assert local.backend == "local"
    settings.ISSUER = {**settings.ISSUER, "ROTATION_PERIOD_SECONDS": 20 * 86400}  # the same steps, in 40 days

    def move_after_day_five(hour):
        if hour >= 5 * 24:
            settings.ISSUER_SIGNING_KEY_BACKEND = "pkcs11"

    failures, verified = _walk(client, instance, 40, on_hour=move_after_day_five)
    assert failures == [] and verified > IssuedToken.objects.filter(reason="timeline").count()
    in_token = SigningKey.objects.get(state=SigningKey.State.ACTIVE)
    assert in_token.backend == "pkcs11"
    assert not SigningKey.objects.filter(backend="local").exists(), "the local key was purged after its overlap"
    signed_by = set(IssuedToken.objects.values_list("kid", flat=True))
    assert {local.kid, in_token.kid} <= signed_by, "tokens of both backends were minted and verified"
