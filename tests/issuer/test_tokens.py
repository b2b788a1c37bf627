import datetime as dt
import io
import json
import logging
import uuid

import jwt
import pytest
import time_machine
from django.test import override_settings

from issuer.keys import encryption
from issuer.keys.services import signing_key_activate, signing_key_create, signing_key_revoke
from issuer.models import IssuedToken
from issuer.sync_state.store import sync_state_by_license_key
from issuer.tokens.selectors import TokenInvalid, verify_service_access_token
from issuer.tokens.services import service_access_token_sync
from subscriptions.services import add_on_purchase_cancel, instance_set_suspended, subscription_update
from tests.factories import AddOnPurchaseFactory
from tests.helpers import SYNC_QUERY, mint_token, sync

pytestmark = pytest.mark.django_db
OLD_QUERY = SYNC_QUERY.replace("    catalog\n", "")
# What the shipped catalog grants ultimate + Duo Enterprise on GitLab 17.11, sorted as the claim carries them (the
# same two years on: the shifted-clock run checks it).
ULTIMATE_DUO_ENTERPRISE_SCOPES = [
    "ask_build",
    "ask_commit",
    "ask_epic",
    "ask_issue",
    "ask_merge_request",
    "ask_work_item",
    "categorize_duo_chat_question",
    "code_suggestions",
    "complete_code",
    "documentation_search",
    "duo_chat",
    "duo_classic_chat",
    "duo_workflow_execute_workflow",
    "duo_workflow_generate_token",
    "explain_code",
    "explain_vulnerability",
    "fix_code",
    "generate_code",
    "generate_commit_message",
    "generate_cube_query",
    "generate_embeddings_codebase",
    "generate_issue_description",
    "glab_ask_git_command",
    "include_dependency_context",
    "include_file_context",
    "include_issue_context",
    "include_local_git_context",
    "include_merge_request_context",
    "include_snippet_context",
    "measure_comment_temperature",
    "observability_all",
    "refactor_code",
    "resolve_vulnerability",
    "review_merge_request",
    "security_scans",
    "self_hosted_models",
    "semantic_search_issue",
    "summarize_comments",
    "summarize_issue_discussions",
    "summarize_merge_request",
    "summarize_new_merge_request",
    "summarize_review",
    "troubleshoot_job",
    "write_tests",
]


def claims_of(token):
    return jwt.decode(token, options={"verify_signature": False})


def test_every_claim(activated, signing_key, settings):
    instance, _ = activated
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with time_machine.travel(at, tick=False):
        minted = mint_token(instance)
    header = jwt.get_unverified_header(minted.token)
    assert header == {"alg": "RS256", "typ": "JWT", "kid": signing_key.kid}
    claims = verify_service_access_token(minted.token, audience="gitlab-ai-gateway", leeway=10**9)
    iat = int(at.timestamp())
    assert claims == {
        "iss": settings.ISSUER_URL,
        "aud": [
            "gitlab-ai-gateway",
            "gitlab-duo-workflow-service",
            "gitlab-observability-backend",
            "gitlab-security-gateway",
        ],
        "sub": str(instance.instance_identifier),
        "gitlab_instance_uid": str(instance.instance_identifier),
        "gitlab_realm": "self-managed",
        "scopes": ULTIMATE_DUO_ENTERPRISE_SCOPES,
        "duo_seat_count": 50,
        "iat": iat,
        "nbf": iat - 5,
        "exp": iat + 3 * 86400,
        "jti": str(minted.record.jti),
    }
    record = IssuedToken.objects.get(jti=minted.record.jti)
    assert (record.kid, record.scopes, record.instance_id) == (signing_key.kid, claims["scopes"], instance.id)
    assert record.expires_at == dt.datetime.fromtimestamp(iat + 3 * 86400, dt.UTC)
    assert minted.token.encode() not in bytes(record.token_encrypted)
    assert encryption.decrypt(record.token_encrypted).decode() == minted.token


def test_verifier_refuses_bad_tokens(activated, signing_key):
    token = mint_token(activated[0]).token
    with pytest.raises(TokenInvalid, match="Audience"):
        verify_service_access_token(token, audience="someone-else")
    with pytest.raises(TokenInvalid, match="Not a JWT"):
        verify_service_access_token("garbage")
    forged = jwt.encode(
        {"iss": "x"}, "a-long-enough-shared-secret-for-hs256!", algorithm="HS256", headers={"kid": signing_key.kid}
    )
    with pytest.raises(TokenInvalid, match="only RS256"):
        verify_service_access_token(forged)
    signing_key_revoke(signing_key.kid, reason="test: revoke")
    with pytest.raises(TokenInvalid, match="Unknown or withdrawn key"):
        verify_service_access_token(token)


def test_sync_answers_both_query_texts(client, activated):
    instance, key = activated
    response, body = sync(client, key)
    assert response.status_code == 200 and "errors" not in body
    access = body["data"]["cloudConnectorAccess"]
    token = access["serviceToken"]["token"]
    assert access["serviceToken"]["expiresAt"] == dt.datetime.fromtimestamp(
        claims_of(token)["exp"], dt.UTC
    ).isoformat().replace("+00:00", "Z")
    assert {s["name"] for s in access["availableServices"]} >= {"code_suggestions", "duo_chat"}
    assert set(access["catalog"]) == {"unit_primitives", "backend_services", "add_ons", "license_types", "services"}
    _, old = sync(client, key, query=OLD_QUERY)
    assert old["data"]["cloudConnectorAccess"]["serviceToken"]["token"] == token  # stored token reused
    assert "catalog" not in old["data"]["cloudConnectorAccess"]


def test_stored_token_reused_while_fresh_and_replaced_on_fingerprint_change(activated):
    instance, key = activated
    first = service_access_token_sync(sync_state_by_license_key(key), gitlab_version="17.11.0")
    assert service_access_token_sync(sync_state_by_license_key(key), gitlab_version="17.11.0").token == first.token
    AddOnPurchaseFactory(subscription=instance.subscription, add_on="duo_pro", quantity=3)
    second = service_access_token_sync(sync_state_by_license_key(key), gitlab_version="17.11.0")
    assert second.token != first.token
    assert (
        service_access_token_sync(sync_state_by_license_key(key), gitlab_version="17.11.1").token != second.token
    )  # version changed


def test_stored_token_replaced_when_the_key_changes(activated, signing_key):
    instance, key = activated
    first = service_access_token_sync(sync_state_by_license_key(key), gitlab_version="17.11.0")
    new_key = signing_key_create()
    signing_key_activate(new_key.kid, force=True, reason="test: forced")
    second = service_access_token_sync(sync_state_by_license_key(key), gitlab_version="17.11.0")
    assert (
        jwt.get_unverified_header(second.token)["kid"] == new_key.kid != jwt.get_unverified_header(first.token)["kid"]
    )


def test_stored_token_replaced_near_expiry(activated):
    instance, key = activated
    start = dt.datetime.now(dt.UTC)
    first = service_access_token_sync(sync_state_by_license_key(key), gitlab_version="17.11.0", at=start)
    assert (
        service_access_token_sync(
            sync_state_by_license_key(key), gitlab_version="17.11.0", at=start + dt.timedelta(hours=11)
        ).token
        == first.token
    )
    # 60 h threshold: at 12 h of age, 60 h of life remain, which is no longer "more than" the threshold
    assert (
        service_access_token_sync(
            sync_state_by_license_key(key), gitlab_version="17.11.0", at=start + dt.timedelta(hours=12)
        ).token
        != first.token
    )


def test_refresh_threshold_leaves_more_than_gitlabs_own_two_days():
    from issuer.conf import issuer_settings

    assert issuer_settings.refresh_threshold > dt.timedelta(days=2)


def test_scopes_shrink_on_the_next_sync_after_a_purchase_ends(client, activated):
    instance, key = activated
    _, body = sync(client, key)
    assert "troubleshoot_job" in claims_of(body["data"]["cloudConnectorAccess"]["serviceToken"]["token"])["scopes"]
    add_on_purchase_cancel(instance.subscription.add_on_purchases.get())
    _, body = sync(client, key)
    claims = claims_of(body["data"]["cloudConnectorAccess"]["serviceToken"]["token"])
    assert "troubleshoot_job" not in claims["scopes"] and "code_suggestions" not in claims["scopes"]
    assert "observability_all" in claims["scopes"] and claims["duo_seat_count"] == 0


def test_null_token_after_the_subscription_ends_or_suspension(client, activated):
    instance, key = activated
    subscription_update(instance.subscription, expires_on=instance.subscription.starts_on + dt.timedelta(days=1))
    response, body = sync(client, key)
    assert response.status_code == 200 and "errors" not in body
    assert body["data"]["cloudConnectorAccess"]["serviceToken"] is None
    assert body["data"]["cloudConnectorAccess"]["availableServices"]


def test_null_token_for_a_suspended_instance(client, activated):
    instance, key = activated
    instance_set_suspended(instance, True)
    _, body = sync(client, key)
    assert body["data"]["cloudConnectorAccess"]["serviceToken"] is None


def test_unknown_key_is_an_error(client, activated):
    response, body = sync(client, "cdl_unknown")
    assert response.status_code == 200
    assert body["data"] == {"cloudConnectorAccess": None}
    assert "license key is not valid" in body["errors"][0]["message"]


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("{not json", 400),
        ('"just a string"', 400),
        ('{"query": 42}', 400),
        ('{"query": "query { nope }"}', 400),
        ('{"query": "query { cloudConnectorAccess(licenseKey: "}', 400),
        ('{"query": "{ __typename }", "variables": []}', 400),
    ],
)
def test_malformed_graphql_is_a_graphql_error_never_500(client, raw, status):
    response = client.post("/graphql", data=raw, content_type="application/json")
    assert response.status_code == status
    assert response.json()["errors"][0]["message"]


def test_missing_variables_are_a_graphql_error(client, db):
    response = client.post("/graphql", data=json.dumps({"query": SYNC_QUERY}), content_type="application/json")
    assert response.status_code == 200
    assert "Variable '$licenseKey' has invalid value" in response.json()["errors"][0]["message"]


def test_sync_records_version_host_and_time_at_most_once_a_minute(client, activated):
    instance, key = activated
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with time_machine.travel(start, tick=False):
        client.post(
            "/graphql",
            data=json.dumps({"query": SYNC_QUERY, "variables": {"licenseKey": key, "gitlabVersion": "17.11.2"}}),
            content_type="application/json",
            HTTP_X_GITLAB_HOST_NAME="gl.example.test",
        )
    instance.refresh_from_db()
    assert (instance.gitlab_version, instance.hostname) == ("17.11.2", "gl.example.test")
    assert instance.last_sync_at == start
    with time_machine.travel(start + dt.timedelta(seconds=59), tick=False):
        sync(client, key, gitlab_version="17.11.2")
    instance.refresh_from_db()
    assert instance.last_sync_at == start, "not again within the minute"
    with time_machine.travel(start + dt.timedelta(seconds=61), tick=False):
        sync(client, key, gitlab_version="17.11.2")
    instance.refresh_from_db()
    assert instance.last_sync_at == start + dt.timedelta(seconds=61), "recorded again once the minute has passed"


def test_warm_sync_makes_at_most_four_queries(client, activated, django_assert_max_num_queries):
    _, key = activated
    sync(client, key)
    with django_assert_max_num_queries(4):
        _, body = sync(client, key)
    assert body["data"]["cloudConnectorAccess"]["serviceToken"]["token"]


@pytest.fixture
def real_log_output():
    """What the project's own handlers write (root and the `django.*` loggers, which do not propagate: JSON lines,
    redacted), at DEBUG, into a buffer."""
    loggers = [logging.getLogger(name) for name in ("", "django", "django.server", "django.request")]
    handlers = {
        handler
        for logger in loggers
        for handler in logger.handlers
        if isinstance(handler, logging.StreamHandler) and type(handler).__module__ != "_pytest.logging"
    }
    assert handlers, "the project's logging configuration is in place"
    stream = io.StringIO()
    streams = {handler: handler.setStream(stream) for handler in handlers}
    levels = {logger: logger.level for logger in loggers}
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    yield stream
    for handler, original in streams.items():
        handler.setStream(original)
    for logger, level in levels.items():
        logger.setLevel(level)


def test_no_response_or_log_carries_the_license_key(client, activated, real_log_output):
    instance, key = activated
    for version in ("17.11.0", "17.11.1"):
        response, _ = sync(client, key, gitlab_version=version)
        assert key not in response.content.decode()
    refused = client.post(
        "/api/v1/service_access_tokens",
        data={},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
        HTTP_X_GITLAB_INSTANCE_ID=str(uuid.uuid4()),
    )
    assert refused.status_code == 403 and key not in refused.content.decode()
    instance_set_suspended(instance, True)
    suspended = client.post(
        "/api/v1/service_access_tokens", data={}, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}"
    )
    assert suspended.status_code == 403
    output = real_log_output.getvalue()
    assert "Forbidden" in output, "django.request's warnings reach these handlers"
    assert key not in output and key[4:] not in output


@override_settings(ISSUER={"TOKEN_TTL_SECONDS": 3600, "REFRESH_THRESHOLD_SECONDS": 600})
def test_ttl_is_configurable(activated):
    minted = mint_token(activated[0])
    claims = claims_of(minted.token)
    assert claims["exp"] - claims["iat"] == 3600


def test_instance_identifier_is_the_subject(activated):
    instance, _ = activated
    claims = claims_of(mint_token(instance).token)
    assert uuid.UUID(claims["sub"]) == instance.instance_identifier


@pytest.mark.django_db(transaction=True)  # autocommit, as a request runs: the statement is its own transaction
def test_a_minting_syncs_record_is_stored_whole_and_leaves_the_session_durable(activated):
    """The record goes in with one statement that turns synchronous commit off for its own transaction only."""
    from django.db import connection

    instance, key = activated
    result = service_access_token_sync(sync_state_by_license_key(key), gitlab_version="17.11.0")
    record = IssuedToken.objects.get(instance=instance)
    assert encryption.decrypt(record.token_encrypted).decode() == result.token
    assert (record.kid, tuple(record.scopes), tuple(record.audiences)) == (result.kid, result.scopes, result.audiences)
    assert record.expires_at == result.expires_at and record.reason == "sync"
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone()[0] == "on", "the next transaction of this connection waits for the flush again"
