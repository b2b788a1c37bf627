"""An add-on's (and a subscription's) `expires_on` is the first day without access, on every real path: a sync at
noon on the expiry day through GraphQL and REST (each judges the purchases its cached sync state holds, in memory),
and the refresh job (which reads them with the queryset rule) whose token the next sync hands out as it is."""

import datetime as dt
import uuid

import jwt
import pytest
import time_machine
from django.test import override_settings

from issuer.models import IssuedToken
from issuer.tokens.refresh import token_refresh_chunk
from subscriptions.services import instance_activate
from tests.factories import AddOnPurchaseFactory, SubscriptionFactory
from tests.helpers import sync

pytestmark = pytest.mark.django_db
DAY = dt.timedelta(days=1)


@pytest.fixture(autouse=True)
def shared_cache(settings):
    """One process: the local-memory cache stands in for the shared one, so the cached sync state is exercised."""
    settings.CACHE_IS_SHARED = True


@pytest.fixture
def expiry_day():
    """A day ahead of the signing key's creation, so both noons below come after it."""
    return dt.datetime.now(dt.UTC).date() + 2 * DAY


def noon(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)


def bound_instance(*, add_on_expires_on: dt.date, subscription_expires_on: dt.date):
    """An ultimate instance with Duo Enterprise (troubleshoot_job, 50 seats) until `add_on_expires_on` and Duo Pro
    (code_suggestions, 5 seats) for the whole subscription."""
    starts_on = add_on_expires_on - 30 * DAY
    subscription = SubscriptionFactory(starts_on=starts_on, expires_on=subscription_expires_on)
    AddOnPurchaseFactory(subscription=subscription, add_on="duo_enterprise", quantity=50, expires_on=add_on_expires_on)
    AddOnPurchaseFactory(subscription=subscription, add_on="duo_pro", quantity=5)
    activation = instance_activate(
        activation_code=subscription.activation_code,
        instance_identifier=str(uuid.uuid4()),
        gitlab_version="17.11.0",
    )
    return activation.instance, activation.license_key


def graphql_claims(client, key):
    _, body = sync(client, key)
    token = body["data"]["cloudConnectorAccess"]["serviceToken"]
    return None if token is None else jwt.decode(token["token"], options={"verify_signature": False})


def rest(client, key):
    return client.post(
        "/api/v1/service_access_tokens",
        data={"gitlab_version": "17.11.0"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )


def rest_claims(client, key):
    response = rest(client, key)
    assert response.status_code == 200, response.content
    return jwt.decode(response.json()["token"], options={"verify_signature": False})


def entitled(claims):
    return ("troubleshoot_job" in claims["scopes"], "code_suggestions" in claims["scopes"], claims["duo_seat_count"])


WITH_ENTERPRISE = (True, True, 50)
PRO_ONLY = (False, True, 5)


@pytest.mark.parametrize("claims_of", [graphql_claims, rest_claims], ids=["graphql", "rest"])
@override_settings(ISSUER={"SYNC_THROTTLE_PER_MINUTE": 1000})
def test_a_sync_at_noon_on_the_add_ons_expiry_day_no_longer_has_it(client, signing_key, expiry_day, claims_of):
    instance, key = bound_instance(add_on_expires_on=expiry_day, subscription_expires_on=expiry_day + 300 * DAY)
    with time_machine.travel(noon(expiry_day - DAY), tick=False):
        assert entitled(claims_of(client, key)) == WITH_ENTERPRISE, "the last day still has it"
        assert entitled(claims_of(client, key)) == WITH_ENTERPRISE, "from the cached sync state too"
    with time_machine.travel(noon(expiry_day), tick=False):
        claims = claims_of(client, key)
    assert entitled(claims) == PRO_ONLY, "the expiry day is the first without it"
    newest = IssuedToken.objects.filter(instance=instance).latest("issued_at")
    assert str(newest.jti) == claims["jti"] and "troubleshoot_job" not in newest.scopes


@override_settings(ISSUER={"SYNC_THROTTLE_PER_MINUTE": 1000})
def test_a_sync_at_noon_on_the_subscriptions_expiry_day_gets_no_token(client, signing_key, expiry_day):
    _, key = bound_instance(add_on_expires_on=expiry_day, subscription_expires_on=expiry_day)
    with time_machine.travel(noon(expiry_day - DAY), tick=False):
        assert graphql_claims(client, key) is not None
        assert rest(client, key).status_code == 200
    with time_machine.travel(noon(expiry_day), tick=False):
        assert graphql_claims(client, key) is None
        refused = rest(client, key)
    assert refused.status_code == 403 and "ended" in refused.json()["detail"]


@override_settings(ISSUER={"SYNC_THROTTLE_PER_MINUTE": 1000, "REFRESH_THRESHOLD_SECONDS": 3600})
def test_the_refresh_job_on_the_expiry_day_re_mints_without_the_add_on_and_the_sync_hands_that_out(
    client, signing_key, expiry_day
):
    """A day-old token is fresh here (re-minted only in its last hour), so only the entitlements can re-mint it."""
    instance, key = bound_instance(add_on_expires_on=expiry_day, subscription_expires_on=expiry_day + 300 * DAY)
    with time_machine.travel(noon(expiry_day - DAY), tick=False):
        assert token_refresh_chunk(instance.pk, instance.pk) == 1
        first = IssuedToken.objects.get(instance=instance)
        assert first.reason == "refresh_first" and "troubleshoot_job" in first.scopes
        assert graphql_claims(client, key)["jti"] == str(first.jti), "the sync the same day hands it out"
    with time_machine.travel(noon(expiry_day), tick=False):
        assert token_refresh_chunk(instance.pk, instance.pk) == 1
        renewed = IssuedToken.objects.filter(instance=instance).latest("issued_at")
        assert renewed.reason == "refresh_entitlements"
        assert "troubleshoot_job" not in renewed.scopes and renewed.duo_seat_count == 5
        claims = graphql_claims(client, key)
        assert claims["jti"] == str(renewed.jti), "the sync agrees with the job: nothing minted"
        assert entitled(rest_claims(client, key)) == PRO_ONLY
    assert IssuedToken.objects.filter(instance=instance).count() == 2
