"""Every admin route answers only what the OpenAPI schema (/api/schema/) documents for it, with the body it documents:
each route is called on its success path and its error paths (no or a refused credential, a role without the
permission, an unknown id or page, a body that is not JSON or not JSON at all, an unreachable database, the
refusals its view declares), and every status the schema documents for a route has a call here that produces it,
so the schema neither hides an answer nor claims one that never comes."""

import datetime as dt
import json
from unittest import mock

import jsonschema
import pytest
from django.contrib.auth.models import User
from django.db import OperationalError, connections
from django.test import Client
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from knox.models import AuthToken

from issuer.keys.services import signing_key_act, signing_key_create

pytestmark = pytest.mark.django_db

ADMIN = "/api/v1/admin/"
UNKNOWN = {"id": "999999", "kid": "no-such-kid"}


def _schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


SCHEMA = None


def schema() -> dict:
    global SCHEMA
    if SCHEMA is None:
        SCHEMA = _schema()
    return SCHEMA


def _operations() -> list[tuple[str, str]]:
    return sorted(
        (method.upper(), path)
        for path, operations in schema()["paths"].items()
        if path.startswith(ADMIN)
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    )


@pytest.fixture
def world(activated, signing_key, admin_user):
    """One of everything a route can name, an admin, a staff account without a role, and their tokens."""
    instance, _ = activated
    subscription = instance.subscription
    purchase = subscription.add_on_purchases.first()
    pending = signing_key_create(reason="the next key")
    norole = User.objects.create_user("norole", password="pw-norole-123456", is_staff=True)
    return {
        "subscription": subscription,
        "purchase": purchase,
        "instance": instance,
        "customer": subscription.customer,
        "active": signing_key,
        "pending": pending,
        "tokens": {"admin": AuthToken.objects.create(admin_user)[1], "norole": AuthToken.objects.create(norole)[1]},
    }


def _ids(world, path: str) -> dict[str, str]:
    """The path's parameters filled with real objects of the kind the route names."""
    if "{" not in path:
        return {}
    if "{kid}" in path:
        return {"kid": world["pending"].kid}
    for prefix, kind in (
        ("add_on_purchases", "purchase"),
        ("instances", "instance"),
        ("customers", "customer"),
        ("subscriptions", "subscription"),  # credits/subscriptions/{id}/… too
    ):
        if f"/{prefix}/" in path:
            return {"id": str(world[kind].pk)}
    return {}


def _valid_body(world, method: str, path: str) -> dict | None:
    today = timezone.now().date()
    subscription, purchase = world["subscription"], world["purchase"]
    route = path.removeprefix(ADMIN)
    bodies = {
        ("POST", "add_on_purchases/"): {
            "subscription": subscription.pk,
            "add_on": "duo_pro",
            "quantity": 3,
            "started_on": today.isoformat(),
            "expires_on": (today + dt.timedelta(days=30)).isoformat(),
        },
        ("PUT", "add_on_purchases/{id}/"): {
            "subscription": subscription.pk,
            "add_on": purchase.add_on,
            "quantity": purchase.quantity + 1,
            "started_on": purchase.started_on.isoformat(),
            "expires_on": purchase.expires_on.isoformat(),
            "trial": purchase.trial,
        },
        ("PATCH", "add_on_purchases/{id}/"): {"quantity": purchase.quantity + 2},
        ("POST", "add_on_purchases/{id}/suspend/"): {"suspended": True},
        ("POST", "credits/grants/"): {
            "subscription": subscription.pk,
            "kind": "one_time",
            "amount": "100",
            "starts_on": today.isoformat(),
            "expires_on": (today + dt.timedelta(days=90)).isoformat(),
            "reason": "a goodwill grant",
        },
        ("POST", "credits/subscriptions/{id}/caps/"): {"user_cap": "50", "reason": "a flat cap"},
        ("POST", "credits/subscriptions/{id}/caps/users/"): {"user_key": "42", "cap": "80", "reason": "more"},
        ("POST", "credits/subscriptions/{id}/overage/"): {"allowed": True, "reason": "agreed"},
        ("POST", "customers/"): {"name": "Another Co", "contact_email": "ops@another.example"},
        ("POST", "instances/{id}/release/"): {},
        ("POST", "instances/{id}/suspend/"): {"suspended": True},
        ("POST", "signing_keys/"): {"reason": "ahead of time"},
        ("POST", "signing_keys/{kid}/activate/"): {"force": True, "reason": "drill"},
        ("POST", "signing_keys/{kid}/purge/"): {},
        ("POST", "signing_keys/{kid}/retire/"): {},
        ("POST", "signing_keys/{kid}/revoke/"): {"reason": "leaked in a drill"},
        ("POST", "subscriptions/"): {
            "customer": world["customer"].pk,
            "license_type": "ultimate",
            "seats": 10,
            "starts_on": today.isoformat(),
        },
        ("PUT", "subscriptions/{id}/"): {
            "customer": subscription.customer_id,
            "license_type": subscription.license_type,
            "seats": subscription.seats + 1,
            "starts_on": subscription.starts_on.isoformat(),
            "expires_on": subscription.expires_on.isoformat(),
            "trial": subscription.trial,
        },
        ("PATCH", "subscriptions/{id}/"): {"seats": subscription.seats + 2},
        ("POST", "subscriptions/{id}/suspend/"): {"suspended": True},
    }
    return bodies.get((method, route))


def _success_ids(world, path: str) -> dict[str, str]:
    """The key each lifecycle step succeeds on: a pending key activates (forced), retires (withdrawn before it
    signs) or is revoked; a key retired by its successor's activation, then revoked, is purged. The error paths
    before may have revoked the world's pending key, so each step gets a key of its own."""
    if path.endswith(("/activate/", "/retire/", "/revoke/")):
        return {"kid": signing_key_create(reason="a key for this step").kid}
    if path.endswith("/purge/"):
        successor = signing_key_create(reason="successor")
        signing_key_act("activate", successor.kid, force=True, reason="drill")
        signing_key_act("revoke", world["active"].kid, reason="drill")
        return {"kid": world["active"].kid}
    return _ids(world, path)


# Refusals a view declares, each with the call that produces it.
DECLARED = {
    ("GET", "audit-events"): [(400, "?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", None)],
    ("GET", "credits/subscriptions/{id}/statement/"): [(400, "?month=January", None)],
    # Before the publish lead without `force`; the active key cannot be retired while it is the only signer; a
    # key still published cannot be purged; an already revoked key cannot be revoked again.
    ("POST", "signing_keys/{kid}/activate/"): [(409, "", {})],
    ("POST", "signing_keys/{kid}/retire/"): [(409, "", {})],
    ("POST", "signing_keys/{kid}/purge/"): [(409, "", {})],
    ("POST", "signing_keys/{kid}/revoke/"): [(409, "revoked-first", {"reason": "again"})],
}


class Caller:
    def __init__(self, world):
        self.world = world

    def __call__(self, method, path, *, who="admin", body=None, raw=None, content_type="application/json"):
        client = Client()
        headers = {}
        if who is not None:
            headers["HTTP_AUTHORIZATION"] = f"Token {self.world['tokens'][who]}"
        data = raw if raw is not None else (None if body is None else json.dumps(body))
        kwargs = {"content_type": content_type} if data is not None else {}
        call = getattr(client, method.lower())
        return call(path, data, **kwargs, **headers) if data is not None else call(path, **headers)


def _filled(path: str, ids: dict[str, str]) -> str:
    for name, value in ids.items():
        path = path.replace("{" + name + "}", value)
    return path


def _openapi_to_json_schema(node):
    """OpenAPI 3.0's `nullable` as JSON Schema's null type, everywhere in a schema."""
    if isinstance(node, dict):
        converted = {key: _openapi_to_json_schema(value) for key, value in node.items() if key != "nullable"}
        if node.get("nullable"):
            if "type" in converted:
                converted["type"] = [converted["type"], "null"]
            elif "$ref" in converted or "allOf" in converted or "oneOf" in converted:
                converted = {"anyOf": [converted, {"type": "null"}]}
            elif "enum" in converted:
                converted["enum"] = [*converted["enum"], None]
        return converted
    if isinstance(node, list):
        return [_openapi_to_json_schema(item) for item in node]
    return node


def _check_body(operation: dict, status: int, response) -> None:
    documented = operation["responses"][str(status)]
    content = documented.get("content", {}).get("application/json")
    if content is None or not response.content:
        return
    whole = _openapi_to_json_schema({**content["schema"], "components": schema()["components"]})
    jsonschema.validate(response.json(), whole)


@pytest.mark.parametrize(("method", "path"), _operations())
def test_each_answer_of_an_admin_route_is_documented_with_its_body(world, method, path):
    operation = schema()["paths"][path][method.lower()]
    documented = {int(code) for code in operation["responses"]}
    call = Caller(world)
    ids = _ids(world, path)
    has_body = "requestBody" in operation
    answered: dict[int, str] = {}

    def expect(status, label, response):
        assert response.status_code == status, f"{label}: {response.status_code} {response.content[:300]!r}"
        assert status in documented, f"{method} {path} answers {status} ({label}) but documents {sorted(documented)}"
        _check_body(operation, status, response)
        answered[status] = label

    body = _valid_body(world, method, path) if has_body else None
    expect(401, "no credential", call(method, _filled(path, ids), who=None, body=body))
    expect(403, "a staff account without a role", call(method, _filled(path, ids), who="norole", body=body))
    if ids:
        expect(404, "an unknown id", call(method, _filled(path, {k: UNKNOWN[k] for k in ids}), body=body))
    elif method == "GET":
        page = "?cursor=not-a-cursor" if path.endswith("audit-events") else "?page=999"
        expect(404, "a page beyond the list", call(method, path + page))
    if has_body:
        expect(400, "a body that is not JSON", call(method, _filled(path, ids), raw="{not json"))
        expect(415, "a body of another type", call(method, _filled(path, ids), raw="x", content_type="text/plain"))
        first_required = _first_required(operation)
        if body and first_required:
            wrong = {**body, first_required: {"not": "this"}}
            expect(400, f"{first_required} of the wrong type", call(method, _filled(path, ids), body=wrong))
    for status, extra, declared_body in DECLARED.get((method, path.removeprefix(ADMIN)), []):
        target = _filled(path, ids)
        if extra == "revoked-first":
            call("POST", target, body={"reason": "first"})
            extra = ""
        elif path.endswith(("/retire/", "/purge/")):
            target = _filled(path, {"kid": world["active"].kid})
        expect(status, f"declared {status}", call(method, target + extra, body=declared_body))
    with mock.patch.object(
        type(connections["default"]), "ensure_connection", side_effect=OperationalError("unreachable")
    ):
        expect(503, "the database unreachable", call(method, _filled(path, ids), body=body))
    success = 201 if method == "POST" and not ids else 200
    if path.endswith("/regenerate_activation_code/") or path.endswith("/cancel/"):
        body = None
    response = call(method, _filled(path, _success_ids(world, path)), body=body)
    expect(success, "the success path", response)

    assert documented == set(answered), f"documented but never answered: {sorted(documented - set(answered))}"


def _first_required(operation: dict) -> str | None:
    reference = operation["requestBody"]["content"]["application/json"]["schema"].get("$ref", "")
    component = schema()["components"]["schemas"].get(reference.split("/")[-1], {})
    return next(iter(component.get("required", [])), None)


def test_every_admin_route_is_covered():
    operations = _operations()
    assert len(operations) >= 34
    assert ("POST", "/api/v1/admin/signing_keys/{kid}/revoke/") in operations


def test_a_path_no_api_route_matches_is_the_documented_json_404(world, client):
    """An id that is not a number matches no route: under /api/ still `{"detail": …}`, elsewhere Django's page."""
    call = Caller(world)
    response = call("POST", "/api/v1/admin/add_on_purchases/0.5/cancel/")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    operation = schema()["paths"]["/api/v1/admin/add_on_purchases/{id}/cancel/"]["post"]
    _check_body(operation, 404, response)
    page = client.get("/no-such-page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")
