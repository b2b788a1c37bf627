"""A changelist answers only the lookups its page offers (issue 22, finding 1): a URL filter on a secret field was
an oracle (`?activation_code__startswith=8` → "1 subscription"), and one on an encrypted column a 500."""

import re
from collections import deque
from html import unescape
from urllib.parse import urljoin, urlsplit

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from config.admin_base import REFUSED_LOOKUP_FIELDS
from issuer.keys.services import signing_key_create
from tests.factories import AddOnPurchaseFactory
from tests.helpers import mint_token, user_in
from tests.ui.test_roles import ROLES

pytestmark = pytest.mark.django_db

# How a lookup reaches a secret from each model: on its own field, or across the relation a filter could follow.
RELATIONS = {"subscriptions.Instance": ["subscription__"], "subscriptions.AddOnPurchase": ["subscription__"]}


@pytest.fixture
def world(activated):
    instance, _ = activated
    signing_key_create()
    mint_token(instance)
    AddOnPurchaseFactory(subscription=instance.subscription, add_on="duo_pro", quantity=3)
    return instance


def _secret_lookups(model_admin) -> list[str]:
    model = model_admin.model
    own = [field.name for field in model._meta.get_fields() if field.name in REFUSED_LOOKUP_FIELDS]
    across = [f"{prefix}{name}" for prefix in RELATIONS.get(model._meta.label, []) for name in REFUSED_LOOKUP_FIELDS]
    return [f"{path}__{suffix}" for path in own + across for suffix in ("startswith", "gt", "exact")]


def _changelists():
    for model, model_admin in admin.site._registry.items():
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        yield model._meta.label, url, model_admin


def test_every_admin_refuses_its_secret_lookups_to_every_role(world):
    tried = 0
    for role in ROLES:
        client = Client()
        client.force_login(user_in(role))
        for label, url, model_admin in _changelists():
            for lookup in _secret_lookups(model_admin):
                status = client.get(url, {lookup: "8"}).status_code
                tried += 1
                # 400: refused before any query; 403: the role may not open the list at all
                assert status in (400, 403), (role, label, lookup, status)
        client.logout()
    assert tried > 100  # activation codes, license-key digests, private keys, tokens, passwords, knox digests


@pytest.mark.parametrize("role", ["viewer", "superuser"])
def test_the_reported_oracle_is_closed(world, role):
    client = Client()
    client.force_login(user_in(role))
    code = world.subscription.activation_code
    for lookup in ("activation_code__startswith", "activation_code", "customer__subscription__activation_code"):
        answer = client.get("/admin/subscriptions/subscription/", {lookup: code[:1]})
        assert answer.status_code == 400 and b"1 subscription" not in answer.content
    assert client.get("/admin/issuer/signingkey/", {"private_key_encrypted__gt": "a"}).status_code == 400
    assert client.get("/admin/issuer/issuedtoken/", {"token_encrypted__gt": "a"}).status_code == 400
    assert client.get("/admin/subscriptions/instance/", {"license_key_digest__startswith": "a"}).status_code == 400
    # lookups the page does not offer, even on harmless fields, are refused too
    assert client.get("/admin/subscriptions/customer/", {"contact_email__startswith": "a"}).status_code == 400


HREF = re.compile(r'(?:href|data-ajax--url|data-href)="([^"]+)"')
SKIP = re.compile(r"/logout/|/delete/|/password/|/r/\d+/")


def _links(page: str, base: str) -> set[str]:
    found = set()
    for raw in HREF.findall(page):
        url = urljoin(base, unescape(raw))
        parts = urlsplit(url)
        if parts.netloc in ("", "testserver") and parts.path.startswith("/admin/") and not SKIP.search(parts.path):
            found.add(parts.path + (f"?{parts.query}" if parts.query else ""))
    return found


@pytest.mark.parametrize("role", ROLES)
def test_every_link_the_back_office_renders_answers_without_a_400(world, role):
    """Filters, the audit trail's "All of its events", raw-id and autocomplete popups: followed from the dashboard,
    breadth first, as each role. Whatever the back office links to, the lookup rule lets through."""
    client = Client()
    client.force_login(user_in(role))
    seen, queue, answers = set(), deque(["/admin/"]), {}
    while queue and len(seen) < 400:
        url = queue.popleft()
        if url in seen:
            continue
        seen.add(url)
        response = client.get(url)
        answers[url] = response.status_code
        if response.status_code == 200 and "html" in response.get("Content-Type", ""):
            queue.extend(_links(response.content.decode(), url) - seen)
    bad = {url: status for url, status in answers.items() if status in (400, 500)}
    assert not bad, bad
    if role != "no role":
        assert len(answers) > 30
        assert any("__exact=" in url for url in answers)  # filter links were followed
