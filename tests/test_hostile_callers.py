"""The instance-facing doors against an attacker: bounded in size, shape and rate, refused in milliseconds, and
never touching another customer's rows (issue: harden the instance-facing door)."""

import datetime as dt
import json
import uuid
from unittest import mock

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from issuer.api.graphql_limits import MAX_BODY_BYTES, MAX_TOKENS, parse_cache
from subscriptions.models import Instance, SeatReport
from tests.helpers import ACTIVATE_MUTATION, SYNC_QUERY, graphql_post

pytestmark = pytest.mark.django_db


def post_graphql(client, query, variables=None, **extra):
    return client.post(
        "/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}),
        content_type="application/json",
        **extra,
    )


def sync_variables(key):
    return {"licenseKey": key, "gitlabVersion": "17.11.0"}


def test_a_body_over_the_limit_is_refused_before_parsing(client, activated, monkeypatch):
    """Refused on its declared size: neither the JSON nor the GraphQL parser ever sees it (what makes it cheap; no
    wall-clock limit, which a loaded machine would break)."""
    import orjson

    from issuer.api import graphql, graphql_limits

    json_parser = mock.Mock(wraps=orjson.loads)
    graphql_parser = mock.Mock(wraps=graphql_limits.parse)
    prepared = mock.Mock(wraps=graphql.document_prepared)
    monkeypatch.setattr(orjson, "loads", json_parser)
    monkeypatch.setattr(graphql_limits, "parse", graphql_parser)
    monkeypatch.setattr(graphql, "document_prepared", prepared)
    aliases = " ".join(
        f"a{n}: cloudConnectorAccess(licenseKey: $k, gitlabVersion: $v) {{ catalog }}" for n in range(5000)
    )
    query = f"query($k: String!, $v: String!) {{ {aliases} }}"
    response = post_graphql(client, query, {"k": "wrong", "v": "17.11.0"})
    assert response.status_code == 413
    assert f"larger than {MAX_BODY_BYTES} bytes" in response.json()["errors"][0]["message"]
    assert not json_parser.called and not prepared.called and not graphql_parser.called
    # A text no earlier test on this worker sent: documents that validated are cached per process.
    small = post_graphql(client, "{ __typename } # " + uuid.uuid4().hex)
    assert small.status_code == 200 and json_parser.called and prepared.called, "the spies do see a parsed body"


def test_aliases_are_refused_so_an_answer_cannot_be_multiplied(client, activated):
    _, key = activated
    query = "query($k: String!, $v: String!) { cloudConnectorAccess(licenseKey: $k, gitlabVersion: $v) { a: catalog b: catalog } }"
    response = post_graphql(client, query, {"k": key, "v": "17.11.0"})
    assert response.status_code == 400
    assert "Aliases are not supported" in response.json()["errors"][0]["message"]
    assert len(response.content) < 2000


def test_an_aliased_root_field_is_refused(client, activated):
    _, key = activated
    query = SYNC_QUERY.replace("cloudConnectorAccess(licenseKey", "x: cloudConnectorAccess(licenseKey")
    response = post_graphql(client, query, sync_variables(key))
    assert response.status_code == 400 and "alias 'x'" in response.json()["errors"][0]["message"]


def test_two_root_fields_are_refused(client, enterprise_subscription):
    query = """mutation($c: String!, $i: String!) {
      cloudActivationActivate(input: {gitlabVersion: "1", activationCode: $c, automated: true, instanceIdentifier: $i, hostname: "h"}) { licenseKey }
      __typename
    }"""
    response = post_graphql(client, query, {"c": enterprise_subscription.activation_code, "i": str(uuid.uuid4())})
    assert response.status_code == 400
    assert "exactly one root field" in response.json()["errors"][0]["message"]
    assert not Instance.objects.exists()


def test_too_many_tokens_is_refused_naming_the_limit(client, db):
    query = "{ " + "a " * (MAX_TOKENS + 10) + "}"
    assert len(query.encode()) < MAX_BODY_BYTES
    response = post_graphql(client, query)
    assert response.status_code == 400
    assert f"more than {MAX_TOKENS} tokens" in response.json()["errors"][0]["message"]


def test_deep_nesting_is_refused(client, db):
    query = "{ " + "cloudConnectorAccess { " * 20 + "x" + " }" * 21
    response = post_graphql(client, query)
    assert response.status_code == 400 and response.json()["errors"]


def test_validation_errors_are_capped(client, db):
    query = "{ " + " ".join(f"unknownField{n}" for n in range(200)) + " }"
    response = post_graphql(client, query)
    assert response.status_code == 400
    assert len(response.json()["errors"]) <= 11  # the cap, plus graphql-core's "too many errors"


def test_only_valid_documents_are_cached(client, activated):
    parse_cache.clear()
    for number in range(20):
        post_graphql(client, f"{{ nope{number} }}")
    assert len(parse_cache) == 0
    _, key = activated
    post_graphql(client, SYNC_QUERY, sync_variables(key))
    assert len(parse_cache) == 1


def test_nul_inside_a_query_literal_is_refused_and_nothing_written(client, enterprise_subscription):
    query = ACTIVATE_MUTATION.replace("hostname: $hostname", 'hostname: "evil\\u0000host"')
    variables = {
        "gitlabVersion": "17.11.0",
        "activationCode": enterprise_subscription.activation_code,
        "automated": True,
        "instanceIdentifier": str(uuid.uuid4()),
        "hostname": "unused",
    }
    response, body = graphql_post(client, query.replace("$hostname: String!", ""), variables)
    assert response.status_code == 400  # the document is refused whole: nothing runs
    assert body["errors"][0]["message"] == "Strings must not contain NUL characters."
    assert not Instance.objects.exists()


@pytest.mark.parametrize(
    "literal",
    [
        'cloudConnectorAccess(licenseKey: "cdl_\\u0000", gitlabVersion: "17.11.0")',  # an argument
        'cloudConnectorAccess(licenseKey: """cdl_\u0000""", gitlabVersion: "17.11.0")',  # a block string
    ],
)
def test_nul_in_any_string_of_a_document_refuses_it_before_it_runs(client, activated, literal):
    query = SYNC_QUERY.replace("cloudConnectorAccess(licenseKey: $licenseKey, gitlabVersion: $gitlabVersion)", literal)
    assert query != SYNC_QUERY
    response, body = graphql_post(client, query.replace("($licenseKey: String!, $gitlabVersion: String!)", ""), {})
    assert (response.status_code, body["errors"][0]["message"]) == (400, "Strings must not contain NUL characters.")
    default = SYNC_QUERY.replace("$gitlabVersion: String!", '$gitlabVersion: String = "17\\u0000"')  # a default
    response, body = graphql_post(client, default, {"licenseKey": activated[1]})
    assert (response.status_code, body["errors"][0]["message"]) == (400, "Strings must not contain NUL characters.")


@pytest.fixture
def tight(settings):
    """Tight limits, and Python's clock frozen for the burst: the counters count in fixed windows, so a burst that
    crossed a window's edge would start again from zero (a flake, not a finding)."""
    settings.INSTANCE_RATE_PER_ADDRESS = "5/m"
    settings.INSTANCE_RATE_PER_LICENSE_KEY = "3/m"
    settings.ACTIVATION_RATE_PER_ADDRESS = "2/h"
    with time_machine.travel(dt.datetime.now(dt.UTC), tick=False):
        yield settings


def test_graphql_is_rate_limited_per_address_before_anything_else(client, db, tight):
    answers = [post_graphql(client, "{ __typename }") for _ in range(7)]
    assert [a.status_code for a in answers[:5]] == [200] * 5
    assert answers[5].status_code == 429 and int(answers[5]["Retry-After"]) >= 1
    assert "requests per client address" in answers[5].json()["errors"][0]["message"]
    other = post_graphql(client, "{ __typename }", REMOTE_ADDR="10.9.8.7")
    assert other.status_code == 200, "another address has its own budget"


def test_activation_attempts_are_limited_tightly(client, db, tight):
    def attempt():
        return post_graphql(
            client,
            ACTIVATE_MUTATION,
            {
                "gitlabVersion": "1",
                "activationCode": "GUESS",
                "automated": True,
                "instanceIdentifier": str(uuid.uuid4()),
                "hostname": "h",
            },
        )

    assert [attempt().status_code for _ in range(2)] == [200, 200]
    refused = attempt()
    assert refused.status_code == 429 and "activation attempts" in refused.json()["errors"][0]["message"]


def test_syncs_are_limited_per_license_key_across_addresses(client, activated, tight):
    _, key = activated
    codes = [
        post_graphql(client, SYNC_QUERY, sync_variables(key), REMOTE_ADDR=f"10.0.0.{n}").status_code for n in range(4)
    ]
    assert codes == [200, 200, 200, 429]


def test_a_license_keys_syncs_and_seat_links_share_one_counter(client, activated, tight):
    """The sync counts in one round trip with its state read (`RateCount`), the seat link through django-ratelimit:
    the same counter, so the fourth request of either door is refused, and an over-limit sync reads nothing."""
    _, key = activated
    seat_link = json.dumps(
        {
            "license_key": key,
            "timestamp": "2026-11-01T00:00:00Z",
            "max_historical_user_count": 1,
            "billable_users_count": 1,
        }
    )
    sync = post_graphql(client, SYNC_QUERY, sync_variables(key), REMOTE_ADDR="10.0.0.1")
    link = client.post("/api/v1/seat_links", data=seat_link, content_type="application/json", REMOTE_ADDR="10.0.0.2")
    again = post_graphql(client, SYNC_QUERY, sync_variables(key), REMOTE_ADDR="10.0.0.3")
    assert [sync.status_code, link.status_code, again.status_code] == [200, 200, 200]
    with CaptureQueriesContext(connection) as queries:
        refused = post_graphql(client, SYNC_QUERY, sync_variables(key), REMOTE_ADDR="10.0.0.4")
    assert refused.status_code == 429 and "requests per license key" in refused.json()["errors"][0]["message"]
    assert int(refused["Retry-After"]) >= 1 and len(queries) == 0
    late = client.post("/api/v1/seat_links", data=seat_link, content_type="application/json", REMOTE_ADDR="10.0.0.5")
    assert late.status_code == 429


def test_an_implausible_license_key_is_counted_too(client, db, tight):
    codes = [
        post_graphql(client, SYNC_QUERY, sync_variables("not-a-key"), REMOTE_ADDR=f"10.0.1.{n}").status_code
        for n in range(4)
    ]
    assert codes[3] == 429


def test_seat_links_are_rate_limited_with_retry_after(client, activated, tight):
    _, key = activated
    body = json.dumps(
        {
            "license_key": key,
            "timestamp": "2026-11-01T00:00:00Z",
            "max_historical_user_count": 1,
            "billable_users_count": 1,
        }
    )
    codes = [client.post("/api/v1/seat_links", data=body, content_type="application/json") for _ in range(4)]
    assert [c.status_code for c in codes] == [200, 200, 200, 429]
    assert codes[3]["Retry-After"] and codes[3].json() == {"success": False, "error": codes[3].json()["error"]}
    assert SeatReport.objects.count() == 3


def test_rest_is_rate_limited_before_the_key_is_checked(client, db, tight):
    codes = [
        client.post(
            "/api/v1/service_access_tokens",
            data="{}",
            content_type="application/json",
            HTTP_AUTHORIZATION="Bearer cdl_guess",
        )
        for _ in range(6)
    ]
    assert [c.status_code for c in codes] == [401, 401, 401, 429, 429, 429]
    assert codes[3]["Retry-After"]


def test_behind_the_tls_proxy_the_address_is_the_proxys_last_hop(client, db, tight):
    tight.ISSUER_URL = "https://issuer.example.test"
    for _ in range(5):
        post_graphql(client, "{ __typename }", HTTP_X_FORWARDED_FOR="1.1.1.1, 203.0.113.5", secure=True)
    spoofed = post_graphql(client, "{ __typename }", HTTP_X_FORWARDED_FOR="9.9.9.9, 203.0.113.5", secure=True)
    assert spoofed.status_code == 429, "a forged first entry does not buy a new budget"
    fresh = post_graphql(client, "{ __typename }", HTTP_X_FORWARDED_FOR="203.0.113.6", secure=True)
    assert fresh.status_code == 200


def test_add_on_metrics_have_a_maximum_length(client, activated):
    _, key = activated
    metrics = [{"add_on_type": f"a{n}", "purchased_seats": 1, "assigned_seats": 1} for n in range(33)]
    body = {
        "license_key": key,
        "timestamp": "2026-11-01T00:00:00Z",
        "max_historical_user_count": 1,
        "billable_users_count": 1,
        "add_on_metrics": metrics,
    }
    response = client.post("/api/v1/seat_links", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 422 and "add_on_metrics" in response.json()["error"]
    assert not SeatReport.objects.exists()


def test_oversized_seat_link_and_rest_bodies_are_413(client, activated):
    _, key = activated
    padding = "x" * 70_000
    seat = client.post(
        "/api/v1/seat_links", data=json.dumps({"license_key": key, "pad": padding}), content_type="application/json"
    )
    rest = client.post(
        "/api/v1/service_access_tokens",
        data=json.dumps({"pad": padding}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert (seat.status_code, rest.status_code) == (413, 413)


def _deep_list(depth: int):
    return json.loads("[" * depth + "]" * depth)


def test_deep_variables_are_a_400_not_a_recursion(client, db):
    response = post_graphql(client, "{ __typename }", {"x": _deep_list(700)})
    assert response.status_code == 400 and "nested deeper than" in response.json()["errors"][0]["message"]


def test_deep_values_with_a_valid_key_are_a_400_on_rest_and_seat_links(client, activated):
    _, key = activated
    rest = client.post(
        "/api/v1/service_access_tokens",
        data=json.dumps({"gitlab_version": _deep_list(900)}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    seat = client.post(
        "/api/v1/seat_links",
        data=json.dumps({"license_key": key, "hostname": _deep_list(900)}),
        content_type="application/json",
    )
    assert (rest.status_code, seat.status_code) == (400, 400)


def test_fragments_at_the_root_cannot_add_root_fields(client, activated):
    _, key = activated
    query = (
        "query($k: String!, $v: String!) { ... on Query { cloudConnectorAccess(licenseKey: $k, gitlabVersion: $v)"
        " { catalog } __schema { types { name } } } }"
    )
    response = post_graphql(client, query, {"k": key, "v": "17.11.0"})
    assert response.status_code == 400 and "no fragments at the root" in response.json()["errors"][0]["message"]


def test_the_parse_cache_keeps_few_and_small_documents(client, db):
    from issuer.api.graphql_limits import PARSE_CACHE_ENTRIES

    parse_cache.clear()
    for number in range(PARSE_CACHE_ENTRIES + 10):
        post_graphql(client, "{ __typename }" + " " * number)
    assert len(parse_cache) == PARSE_CACHE_ENTRIES
    parse_cache.clear()
    post_graphql(client, "{ __typename }" + " " * 5000)
    assert len(parse_cache) == 0, "a valid text of an implausible size is not kept"


@pytest.mark.parametrize(
    ("forwarded", "hops", "bucket"),
    [
        ("203.0.113.5:51234", 1, "203.0.113.5"),
        ("[2001:db8::1]:443", 1, "2001:db8::/64"),
        ("2001:db8::1, 2001:db8::2", 1, "2001:db8::/64"),
        ("198.51.100.7, 203.0.113.9, 10.0.0.2", 2, "203.0.113.9"),
        ("10.0.0.2", 2, "127.0.0.1"),  # fewer entries than trusted proxies: the peer's own address
    ],
)
def test_client_address_behind_proxies(rf, settings, forwarded, hops, bucket):
    from config.limits import client_address

    settings.ISSUER_URL = "https://issuer.example.test"
    settings.TRUSTED_PROXY_HOPS = hops
    assert client_address(rf.get("/", HTTP_X_FORWARDED_FOR=forwarded)) == bucket


def test_control_characters_in_a_seat_link_are_refused(client, activated):
    _, key = activated
    body = {
        "license_key": key,
        "timestamp": "2026-11-01T00:00:00Z",
        "max_historical_user_count": 1,
        "billable_users_count": 1,
        "hostname": "evil\x1b[31mhost",
    }
    response = client.post("/api/v1/seat_links", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 422 and "Control characters" in response.json()["error"]
    assert not SeatReport.objects.exists()
