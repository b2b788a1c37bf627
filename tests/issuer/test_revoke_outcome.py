"""A revoke stands even when the broker is away: it says which key signs now and that the re-mint is pending, and
the next refresh run does the re-mint."""

import io
import json
from unittest import mock

import pytest
from django.core.management import call_command
from kombu.exceptions import OperationalError as BrokerUnreachable
from rest_framework.test import APIClient

from issuer.jobs import job_pending_since
from issuer.models import IssuedToken, SigningKey
from issuer.tasks import token_refresh
from tests.helpers import sync

pytestmark = pytest.mark.django_db

BROKER_DOWN = mock.patch("issuer.tasks.token_refresh.delay", side_effect=BrokerUnreachable("Connection refused"))


def test_command_revoke_reports_the_new_signer_and_a_pending_re_mint(client, activated, signing_key):
    _, key = activated
    sync(client, key)
    out, err = io.StringIO(), io.StringIO()
    with BROKER_DOWN:
        call_command(
            "signing_keys",
            "revoke",
            "--kid",
            signing_key.kid,
            "--reason",
            "test: revoke",
            "--json",
            stdout=out,
            stderr=err,
        )
    report = json.loads(out.getvalue())
    successor = SigningKey.objects.get(state=SigningKey.State.ACTIVE)
    assert report["state"] == "revoked" and report["signing_now"] == successor.kid and report["remint"] == "pending"
    assert "could not be queued" in err.getvalue()
    assert job_pending_since("token_refresh") is not None

    token_refresh()  # the next scheduled run
    assert job_pending_since("token_refresh") is None
    assert IssuedToken.objects.filter(kid=successor.kid).count() == 1


def test_command_revoke_says_queued_when_the_broker_answers(activated, signing_key):
    out = io.StringIO()
    call_command("signing_keys", "revoke", "--kid", signing_key.kid, "--reason", "test: revoke", "--json", stdout=out)
    assert json.loads(out.getvalue())["remint"] == "queued"


def test_admin_api_revoke_is_not_a_500_without_a_broker(activated, signing_key, admin_user):
    api = APIClient()
    api.force_authenticate(admin_user)
    with BROKER_DOWN:
        response = api.post(
            f"/api/v1/admin/signing_keys/{signing_key.kid}/revoke/", {"reason": "test: revoke"}, format="json"
        )
    assert response.status_code == 200 and response.json()["state"] == "revoked"
