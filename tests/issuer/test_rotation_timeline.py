"""200 simulated days: the policy runs hourly, a token is minted hourly, and an AI gateway that re-fetches the
JWKS only every 24 hours (and never on an unknown kid) must accept every token for its whole life."""

import datetime as dt

import jwt
import pytest
import time_machine
from django.utils import timezone

from issuer.keys.services import signing_key_policy_run
from issuer.models import IssuedToken, SigningKey
from tests.helpers import mint_token

pytestmark = pytest.mark.django_db

HOUR = dt.timedelta(hours=1)
GATEWAY_CACHE = dt.timedelta(hours=24)


class Gateway:
    """Caches the JWKS for 24 h from its first fetch; verifies with python's PyJWT, RS256 and its audience."""

    def __init__(self, client):
        self.client = client
        self.fetched_at = None
        self.keys = None

    def refresh_if_due(self, now) -> bool:
        if self.fetched_at is not None and now - self.fetched_at < GATEWAY_CACHE:
            return False
        self.keys = jwt.PyJWKSet.from_dict(self.client.get("/oauth/discovery/keys").json())
        self.fetched_at = now
        return True

    def verify(self, token):
        kid = jwt.get_unverified_header(token)["kid"]
        try:
            key = self.keys[kid]
        except KeyError:
            raise AssertionError(f"the gateway's cached JWKS has no key {kid}") from None
        return jwt.decode(token, key.key, algorithms=["RS256"], audience="gitlab-ai-gateway", leeway=0)


def test_two_hundred_days_of_rotation_without_a_single_rejected_token(client, activated):
    instance, _ = activated
    start = timezone.now().replace(minute=7, second=0, microsecond=0)
    gateway = Gateway(client)
    live = []  # (token, exp) minted and not yet expired
    failures, verified = [], 0
    with time_machine.travel(start, tick=False) as traveller:
        for hour in range(200 * 24):
            now = start + hour * HOUR
            traveller.move_to(now)
            signing_key_policy_run()
            refreshed = gateway.refresh_if_due(now)
            token = mint_token(instance, reason="timeline").token
            live = [(t, exp) for t, exp in live if exp > now.timestamp()]
            live.append((token, jwt.decode(token, options={"verify_signature": False})["exp"]))
            # The gateway's view changes only when it re-fetches: checking every live token then, and each new
            # token at birth, covers every moment of every token's life.
            for candidate, _ in live if refreshed else live[-1:]:
                try:
                    gateway.verify(candidate)
                    verified += 1
                except Exception as error:  # collect them all, then fail with the list
                    failures.append((now.isoformat(), repr(error)))
    assert failures == []
    assert verified > 200 * 24
    signing_kids = set(IssuedToken.objects.values_list("kid", flat=True))
    assert len(signing_kids) >= 3, "at least two rotations in 200 days"
    published = set(SigningKey.objects.values_list("kid", flat=True))
    assert signing_kids - published, "keys retired long enough ago were purged from the JWKS"
