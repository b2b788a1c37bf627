"""Whatever a client sends to the instance-facing endpoints, the answer is never a 5xx."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from subscriptions.models import Instance
from tests.helpers import ACTIVATE_MUTATION, SYNC_QUERY

pytestmark = pytest.mark.django_db

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
SEAT_FIELDS = [
    "gitlab_version",
    "timestamp",
    "license_key",
    "max_historical_user_count",
    "billable_users_count",
    "hostname",
    "instance_id",
    "unique_instance_id",
    "add_on_metrics",
]
fuzz = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(autouse=True)
def _no_rate_limits(settings):
    """Fuzzing is about answers, not about counting: the rate limits have tests of their own."""
    settings.INSTANCE_RATE_PER_ADDRESS = settings.INSTANCE_RATE_PER_LICENSE_KEY = "100000/m"
    settings.ACTIVATION_RATE_PER_ADDRESS = "100000/m"


# Pieces of GraphQL text, real and hostile, that hypothesis strings together into query documents.
GRAPHQL_PIECES = [
    "query",
    "mutation",
    "subscription",
    "fragment f on Query",
    "...f",
    "... on Query",
    "{",
    "}",
    "(",
    ")",
    ":",
    "$",
    "$licenseKey: String!",
    "cloudConnectorAccess",
    "cloudActivationActivate",
    "licenseKey:",
    "gitlabVersion:",
    "serviceToken",
    "token",
    "expiresAt",
    "catalog",
    "availableServices",
    "name",
    "a:",
    "b: catalog",
    "__typename",
    '"cdl_x"',
    '"17.11.0"',
    '"bad\u0000value"',
    r'"bad\u0000value"',
    '"""block"""',
    "input:",
    '{activationCode: "X"}',
    "12",
    "-1.5e9",
    "true",
    "null",
    "[",
    "]",
    "@skip(if: true)",
    "@include(if: $x)",
    "#comment\n",
    "\u00e9",
    ",",
]


@fuzz
@given(
    query=st.sampled_from([SYNC_QUERY, ACTIVATE_MUTATION, "{ __typename }", "query {", ""]),
    variables=json_values,
    operation=json_values,
)
def test_graphql_never_5xx(client, activated, query, variables, operation):
    body = json.dumps({"query": query, "variables": variables, "operationName": operation})
    response = client.post("/graphql", data=body, content_type="application/json")
    assert response.status_code < 500
    assert "errors" in response.json() or "data" in response.json()


@fuzz
@given(raw=st.binary(max_size=200))
def test_graphql_raw_bytes_never_5xx(client, db, raw):
    assert client.post("/graphql", data=raw, content_type="application/json").status_code < 500


@fuzz
@given(values=st.fixed_dictionaries({}, optional={field: json_values for field in SEAT_FIELDS}), use_key=st.booleans())
def test_seat_link_never_5xx(client, activated, values, use_key):
    if use_key:
        values["license_key"] = activated[1]
    response = client.post("/api/v1/seat_links", data=json.dumps(values), content_type="application/json")
    assert response.status_code in (200, 400, 422)
    assert response.json()["success"] is (response.status_code == 200)


@fuzz
@given(body=json_values, header=st.text(max_size=60), use_key=st.booleans())
def test_token_endpoint_never_5xx(client, activated, body, header, use_key):
    authorization = f"Bearer {activated[1]}" if use_key else header
    response = client.post(
        "/api/v1/service_access_tokens",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=authorization,
        HTTP_X_GITLAB_INSTANCE_ID=str(activated[0].instance_identifier),
    )
    assert response.status_code in (200, 400, 401, 403, 429)


NUL = "bad\x00value"


@pytest.mark.parametrize("field", ["activationCode", "instanceIdentifier", "hostname", "gitlabVersion"])
def test_nul_characters_in_activation_are_refused_cleanly(client, enterprise_subscription, field):
    import uuid

    variables = {
        "gitlabVersion": "17.11.0",
        "activationCode": enterprise_subscription.activation_code,
        "automated": True,
        "instanceIdentifier": str(uuid.uuid4()),
        "hostname": "gitlab.example.test",
    }
    variables[field] = NUL
    response = client.post(
        "/graphql",
        data=json.dumps({"query": ACTIVATE_MUTATION, "variables": variables}),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "Strings must not contain NUL characters."
    assert not Instance.objects.exists()


def test_nul_characters_in_sync_and_seat_link_are_refused_cleanly(client, activated):
    _, key = activated
    for variables in ({"licenseKey": NUL, "gitlabVersion": "17.11.0"}, {"licenseKey": key, "gitlabVersion": NUL}):
        response = client.post(
            "/graphql", data=json.dumps({"query": SYNC_QUERY, "variables": variables}), content_type="application/json"
        )
        assert response.status_code == 400 and response.json()["errors"]
    response = client.post(
        "/graphql",
        data=json.dumps({"query": SYNC_QUERY, "variables": {"licenseKey": key, "gitlabVersion": "17.11.0"}}),
        content_type="application/json",
        HTTP_X_GITLAB_HOST_NAME=NUL,
    )
    assert response.status_code == 200 and response.json()["data"]["cloudConnectorAccess"]["serviceToken"]
    seat = client.post(
        "/api/v1/seat_links",
        data=json.dumps(
            {
                "license_key": key,
                "timestamp": "2026-11-01T00:00:00Z",
                "billable_users_count": 1,
                "max_historical_user_count": 1,
                "hostname": NUL,
            }
        ),
        content_type="application/json",
    )
    assert seat.status_code == 422


def test_nul_characters_from_the_command_line_are_a_clear_error(db):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError):
        call_command("create_subscription", "--customer", NUL, "--plan", "premium", "--seats", "1", "--json")


@fuzz
@given(pieces=st.lists(st.sampled_from(GRAPHQL_PIECES), max_size=40), repeat=st.integers(1, 60))
def test_graphql_query_text_never_5xx(client, activated, pieces, repeat):
    """Hostile query text: aliases, depth, size (the pieces repeated), literals, fragments, directives."""
    query = " ".join(pieces) * repeat
    variables = {"licenseKey": activated[1], "gitlabVersion": "17.11.0", "x": True}
    response = client.post(
        "/graphql", data=json.dumps({"query": query, "variables": variables}), content_type="application/json"
    )
    assert response.status_code < 500, response.content[:300]
    assert "errors" in response.json() or "data" in response.json()


@fuzz
@given(text=st.text(max_size=300))
def test_graphql_arbitrary_query_text_never_5xx(client, db, text):
    response = client.post("/graphql", data=json.dumps({"query": text}), content_type="application/json")
    assert response.status_code < 500


def _nested(depth: int, opener: str) -> bytes:
    closer = "]" if opener == "[" else "}"
    inner = '{"a":' if opener == "{" else "["
    return ((inner * depth) + "1" + (closer * depth)).encode()


@pytest.mark.parametrize("depth", [1100, 100_000])
@pytest.mark.parametrize("opener", ["[", "{"])
@pytest.mark.parametrize("path", ["/graphql", "/api/v1/seat_links", "/api/v1/service_access_tokens"])
def test_deep_json_is_a_client_error_on_every_json_endpoint(client, activated, path, opener, depth):
    response = client.post(
        path, data=_nested(depth, opener), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {activated[1]}"
    )
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:200])
