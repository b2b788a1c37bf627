import datetime as dt
import uuid

import jwt
import pytest
import time_machine
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from issuer.keys.services import signing_key_activate, signing_key_create, signing_key_revoke
from issuer.models import IssuedToken, SigningKey
from issuer.tasks import token_refresh
from issuer.tokens.refresh import token_refresh_chunk, token_refresh_plan
from issuer.tokens.services import signer_active
from subscriptions.services import add_on_purchase_cancel, instance_activate, instance_set_suspended
from tests.factories import AddOnPurchaseFactory
from tests.helpers import mint_token, postgres_only, run_at_once

pytestmark = pytest.mark.django_db


def rest(client, key=None, instance_id=None, body=None):
    headers = {}
    if key is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    if instance_id is not None:
        headers["HTTP_X_GITLAB_INSTANCE_ID"] = instance_id
    return client.post("/api/v1/service_access_tokens", data=body or {}, content_type="application/json", **headers)


def test_rest_issues_a_token(client, activated, signing_key):
    instance, key = activated
    response = rest(client, key, str(instance.instance_identifier), {"gitlab_version": "17.11.0"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "expires_at", "scopes", "audiences", "kid"}
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert body["scopes"] == claims["scopes"] and body["audiences"] == claims["aud"] and body["kid"] == signing_key.kid


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer cdl_unknown", "Basic abc", "Bearer a b"])
def test_rest_401_same_answer_for_missing_and_unknown(client, activated, header):
    kwargs = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.post("/api/v1/service_access_tokens", content_type="application/json", **kwargs)
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid or missing license key."}


def test_rest_403_for_ended_subscription_and_wrong_instance(client, activated):
    instance, key = activated
    assert rest(client, key, str(uuid.uuid4())).status_code == 403
    instance.subscription.expires_on = instance.subscription.starts_on + dt.timedelta(days=1)
    instance.subscription.save()
    response = rest(client, key)
    assert response.status_code == 403 and "ended" in response.json()["detail"]


def test_rest_bad_body_is_400(client, activated):
    _, key = activated
    assert rest(client, key, body={"gitlab_version": "x" * 100}).status_code == 400
    response = client.post(
        "/api/v1/service_access_tokens",
        data="{nope",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert response.status_code == 400


@override_settings(ISSUER={"SYNC_THROTTLE_PER_MINUTE": 3})
def test_rest_is_throttled_per_instance(client, activated, enterprise_subscription):
    _, key = activated
    other = AddOnPurchaseFactory().subscription
    other_key = instance_activate(
        activation_code=other.activation_code, instance_identifier=str(uuid.uuid4())
    ).license_key
    # Python's clock frozen for the burst: the counter counts in fixed windows, and one crossed would start again.
    with time_machine.travel(dt.datetime.now(dt.UTC), tick=False):
        assert [rest(client, key).status_code for _ in range(3)] == [200, 200, 200]
        throttled = rest(client, key)
        assert throttled.status_code == 429 and int(throttled["Retry-After"]) > 0
        assert rest(client, other_key).status_code == 200


def _instances(count, signing_key):
    keys = []
    for _ in range(count):
        subscription = AddOnPurchaseFactory(add_on="duo_pro", quantity=5).subscription
        keys.append(
            instance_activate(
                activation_code=subscription.activation_code,
                instance_identifier=str(uuid.uuid4()),
                gitlab_version="17.11.0",
            )
        )
    return [activation.instance for activation in keys]


def test_refresh_mints_for_instances_without_fresh_tokens_only(signing_key):
    instances = _instances(5, signing_key)
    token_refresh()
    assert IssuedToken.objects.count() == 5
    assert set(IssuedToken.objects.values_list("reason", flat=True)) == {"refresh_first"}
    token_refresh()
    assert IssuedToken.objects.count() == 5  # idempotent
    add_on_purchase_cancel(instances[0].subscription.add_on_purchases.get())
    token_refresh()
    assert IssuedToken.objects.filter(reason="refresh_entitlements").count() == 1


def test_refresh_remints_near_expiry(signing_key):
    _instances(2, signing_key)
    now = dt.datetime.now(dt.UTC)
    for first, last in token_refresh_plan():
        token_refresh_chunk(first, last, at=now)
    later = now + dt.timedelta(hours=13)
    minted = sum(token_refresh_chunk(first, last, at=later) for first, last in token_refresh_plan())
    assert minted == 2
    assert IssuedToken.objects.filter(reason="refresh_expiry").count() == 2


def test_refresh_after_rotation_and_after_revoke(signing_key):
    _instances(3, signing_key)
    token_refresh()
    new_key = signing_key_create()
    signing_key_activate(new_key.kid, force=True, reason="test: forced")
    token_refresh()
    assert IssuedToken.objects.filter(reason="refresh_key", kid=new_key.kid).count() == 3
    signing_key_revoke(new_key.kid, reason="test: revoke")  # on commit: the refresh re-mints everything it signed
    assert IssuedToken.objects.filter(kid=new_key.kid).count() == 3
    successor = SigningKey.objects.get(state=SigningKey.State.ACTIVE)
    assert successor.kid not in (new_key.kid, signing_key.kid)
    assert IssuedToken.objects.filter(kid=successor.kid, reason="refresh_key").count() == 3


def test_refresh_plan_chunks_by_id(signing_key):
    instances = _instances(5, signing_key)
    ids = sorted(instance.pk for instance in instances)
    assert token_refresh_plan(chunk_size=2) == [(ids[0], ids[1]), (ids[2], ids[3]), (ids[4], ids[4])]


def test_refresh_skips_instances_without_access(signing_key):
    instances = _instances(2, signing_key)
    instances[0].subscription.suspended = True
    instances[0].subscription.save()
    token_refresh()
    assert IssuedToken.objects.count() == 1


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_refresh_runs_at_once_mint_once_per_instance(signing_key):
    instances = _instances(30, signing_key)
    first, last = min(i.pk for i in instances), max(i.pk for i in instances)
    counts = run_at_once(lambda: token_refresh_chunk(first, last), lambda: token_refresh_chunk(first, last))
    assert sum(counts) == 30
    assert IssuedToken.objects.count() == 30
    assert set(IssuedToken.objects.values_list("instance_id", flat=True)) == {i.pk for i in instances}


def test_a_pre_minted_token_is_what_the_next_sync_hands_out(client, signing_key):
    """The refresh job's bulk insert (COPY on PostgreSQL) round-trips: the sync reuses that exact token."""
    subscription = AddOnPurchaseFactory(add_on="duo_enterprise", quantity=9).subscription
    activation = instance_activate(
        activation_code=subscription.activation_code, instance_identifier=str(uuid.uuid4()), gitlab_version="17.11.0"
    )
    token_refresh()
    record = IssuedToken.objects.get()
    assert record.reason == "refresh_first" and "troubleshoot_job" in record.scopes and record.duo_seat_count == 9
    response = rest(client, activation.license_key, body={"gitlab_version": "17.11.0"})
    body = response.json()
    assert IssuedToken.objects.count() == 1, "the stored token was handed out, nothing minted"
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["jti"] == str(record.jti) and claims["scopes"] == record.scopes


def test_refresh_lag_and_key_metrics_are_exported(client, activated):
    """`activated`: an instance for the refresh to mint for, so this test does not lean on an earlier one."""
    from issuer.keys.services import signing_key_policy_run

    token_refresh()
    signing_key_policy_run()
    text = client.get("/metrics").content.decode()
    assert 'issuer_signing_keys{state="active"} 1.0' in text
    assert "issuer_active_signing_key_age_seconds" in text
    assert 'issuer_job_last_success_timestamp_seconds{job="signing_key_policy"}' in text
    lag = next(line for line in text.splitlines() if line.startswith("issuer_token_refresh_lag_seconds "))
    assert 0 <= float(lag.split()[1]) < 60
    assert 'issuer_tokens_issued_total{reason="refresh_first"}' in text


def test_sync_results_are_counted(client, activated):
    from tests.helpers import sync

    def count(result):
        text = client.get("/metrics").content.decode()
        line = next(
            (row for row in text.splitlines() if row.startswith(f'issuer_token_syncs_total{{result="{result}"}}')), None
        )
        return float(line.split()[1]) if line else 0.0

    minted, stored = count("minted"), count("stored")
    sync(client, activated[1])
    sync(client, activated[1])
    assert (count("minted"), count("stored")) == (minted + 1, stored + 1)


def test_expired_tokens_keep_their_record_but_lose_the_ciphertext(signing_key):
    from issuer.tokens.refresh import token_ciphertexts_drop_expired

    _instances(2, signing_key)
    token_refresh()
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=4)
    assert token_ciphertexts_drop_expired(at=later) == 2
    assert IssuedToken.objects.count() == 2
    assert not IssuedToken.objects.filter(token_encrypted__isnull=False).exists()


def test_refresh_reads_only_the_freshness_window_yet_tells_expiry_from_first(signing_key):
    """Tokens issued before the window (TTL minus the refresh threshold) cannot be fresh, so the lookup skips
    their months; an instance whose only tokens lie there is re-minted for expiry, not as if it had none."""
    instances = _instances(2, signing_key)
    now = dt.datetime.now(dt.UTC)
    window = dt.timedelta(seconds=3 * 86400 - 60 * 3600)  # the default TTL less the default refresh threshold
    mint_token(instances[0], at=now - window - dt.timedelta(minutes=1))
    for first, last in token_refresh_plan():
        token_refresh_chunk(first, last, at=now)
    reasons = dict(
        IssuedToken.objects.filter(issued_at__gte=now - dt.timedelta(seconds=1)).values_list("instance", "reason")
    )
    assert reasons == {instances[0].pk: "refresh_expiry", instances[1].pk: "refresh_first"}
    a_minute_later = now + dt.timedelta(minutes=1)  # what was just minted is inside the window, and fresh
    assert sum(token_refresh_chunk(first, last, at=a_minute_later) for first, last in token_refresh_plan()) == 0


def test_an_old_token_is_expiry_even_when_a_skipped_instance_has_a_fresh_one(signing_key):
    """The chunk's range holds a suspended instance with a token in the window: the other instance, whose only
    token is older, is still told apart from one never issued a token."""
    old, suspended = _instances(2, signing_key)
    now = dt.datetime.now(dt.UTC)
    mint_token(old, at=now - dt.timedelta(days=2))
    mint_token(suspended, at=now - dt.timedelta(hours=1))
    instance_set_suspended(suspended, True)  # not refreshed: outside the chunk's instances
    first, last = min(old.pk, suspended.pk), max(old.pk, suspended.pk)
    assert token_refresh_chunk(first, last, at=now) == 1
    assert IssuedToken.objects.filter(instance=old).latest("issued_at").reason == "refresh_expiry"


def test_a_refresh_chunk_costs_the_same_queries_for_5_instances_as_for_25(signing_key):
    """The chunk's reads are by range or by one list each, never per instance."""
    small = _instances(5, signing_key)
    large = _instances(25, signing_key)
    at = dt.datetime.now(dt.UTC)
    signer_active()  # the key is decrypted once per process, not per chunk

    def queries_of(instances):
        first, last = min(i.pk for i in instances), max(i.pk for i in instances)
        with CaptureQueriesContext(connection) as captured:
            assert token_refresh_chunk(first, last, at=at) == len(instances)
        return len(captured.captured_queries)

    assert queries_of(small) == queries_of(large)
