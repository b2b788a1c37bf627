"""Inspect a token: its JOSE header, time claims in UTC with how far off they are, `sub` and `kid` linked, and a
token of a revoked key named with when, by whom and why it was revoked (from the audit trail)."""

import datetime as dt
import re
import uuid

import pytest
import time_machine
from django.utils import timezone

from audit.models import AuditEvent
from issuer.backoffice.selectors import duration_words
from issuer.keys.services import signing_key_create, signing_key_ensure_active, signing_key_revoke
from subscriptions.services import instance_activate
from tests.factories import AddOnPurchaseFactory
from tests.helpers import mint_token

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("delta", "words"),
    [
        (dt.timedelta(days=2, hours=23, minutes=59), "in 2 d 23 h"),
        (dt.timedelta(hours=5, minutes=10, seconds=30), "in 5 h 10 min"),
        (dt.timedelta(minutes=12), "in 12 min"),
        (-dt.timedelta(days=1, hours=2), "1 d 2 h ago"),
    ],
)
def test_durations_read_in_days_hours_and_minutes(delta, words):
    assert duration_words(delta) == words


@pytest.fixture
def token_and_instance():
    signing_key_ensure_active()
    subscription = AddOnPurchaseFactory().subscription
    activation = instance_activate(
        activation_code=subscription.activation_code, instance_identifier=str(uuid.uuid4()), hostname="gl.example.test"
    )
    return mint_token(activation.instance), activation.instance


def _cell(page: str, claim: str) -> str:
    return re.search(rf'<tr data-claim="{claim}">.*?<td[^>]*>(.*?)</td>', page, re.S).group(1)


def test_a_valid_token_shows_its_header_readable_times_and_links(admin_client, token_and_instance):
    minted, instance = token_and_instance
    issued = minted.record.issued_at
    with time_machine.travel(issued + dt.timedelta(minutes=1), tick=False):
        page = admin_client.post("/admin/inspect-token/", {"token": minted.token}).content.decode()
    assert "Valid:" in page and 'id="jose-header"' in page
    assert "<code>RS256</code>" in page and "<code>JWT</code>" in page
    expires = minted.record.expires_at
    left = duration_words(expires - (issued + dt.timedelta(minutes=1)))
    assert f"{expires:%Y-%m-%d %H:%M} UTC ({left})" in _cell(page, "exp") and left.startswith("in ")
    assert f'href="/admin/instances/{instance.pk}/overview/"' in _cell(page, "sub")
    assert f'href="/admin/keys/#key-{minted.record.kid}"' in page
    assert minted.token not in page


def test_a_token_of_a_revoked_key_names_when_who_and_why(admin_client, token_and_instance):
    minted, _ = token_and_instance
    signing_key_create(at=timezone.now() - dt.timedelta(days=3))
    signing_key_revoke(minted.record.kid, reason="private key found in a public bucket")
    page = admin_client.post("/admin/inspect-token/", {"token": minted.token}).content.decode()
    assert "Not valid:" in page
    revoked = re.search(r'<p id="key-revoked">(.*?)</p>', page, re.S).group(1)
    event = AuditEvent.objects.get(action="signingkey.revoke")
    assert f"revoked</strong> at {event.at:%Y-%m-%d %H:%M} UTC by {event.actor_name}:" in revoked, revoked
    assert "private key found in a public bucket" in revoked
    assert "Claims (not verified)" in page, "what the token says, marked unverified"


def test_garbage_is_not_a_jwt_and_shows_nothing_else(admin_client):
    page = admin_client.post("/admin/inspect-token/", {"token": "not-a-token"}).content.decode()
    assert "Not valid:</strong> Not a JWT" in page and 'id="jose-header"' not in page
