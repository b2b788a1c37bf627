"""Issue 22 (low): "a reason is required" means visible text: whitespace, zero-width and other invisible characters
alone are refused by every door that asks for one (the keys page, the admin API, `manage.py signing_keys`)."""

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from issuer.models import SigningKey

pytestmark = pytest.mark.django_db

INVISIBLE = ["\u200b", " \u200b ", "\u2060\ufeff", "\u3164", "\u00a0\u2800", "\u0301", "\u202e\u200d"]


@pytest.mark.parametrize("reason", INVISIBLE)
def test_reason_text_finds_nothing_in_invisible_characters(reason):
    from audit.reasons import reason_text

    assert reason_text(reason) == ""


@pytest.mark.parametrize(
    ("given", "kept"), [(" key leaked ", "key leaked"), ("\u200bleak\u200b", "leak"), ("caf\u0065\u0301", "café")]
)
def test_reason_text_keeps_what_is_visible(given, kept):
    import unicodedata

    from audit.reasons import reason_text

    assert unicodedata.normalize("NFC", reason_text(given)) == unicodedata.normalize("NFC", kept)


@pytest.mark.parametrize("reason", INVISIBLE)
def test_the_admin_api_refuses_an_invisible_revoke_reason(signing_key, reason, admin_user):
    api = APIClient()
    api.force_authenticate(admin_user)
    response = api.post(f"/api/v1/admin/signing_keys/{signing_key.kid}/revoke/", {"reason": reason}, format="json")
    assert response.status_code == 400 and "reason" in response.json()
    assert SigningKey.objects.get(kid=signing_key.kid).state == SigningKey.State.ACTIVE


@pytest.mark.parametrize("reason", INVISIBLE)
def test_the_command_refuses_an_invisible_revoke_reason(signing_key, reason):
    with pytest.raises(CommandError, match="reason"):
        call_command("signing_keys", "revoke", "--kid", signing_key.kid, "--reason", reason)
    assert SigningKey.objects.get(kid=signing_key.kid).state == SigningKey.State.ACTIVE


@pytest.mark.parametrize("reason", INVISIBLE)
def test_the_keys_page_refuses_an_invisible_revoke_reason(client, signing_key, reason, admin_user):
    client.force_login(admin_user)
    response = client.post(f"/admin/keys/{signing_key.kid}/revoke/", {"reason": reason})
    assert response.status_code == 200 and "Say why" in response.content.decode()
    assert SigningKey.objects.get(kid=signing_key.kid).state == SigningKey.State.ACTIVE


def test_a_visible_reason_is_recorded_without_the_invisible_padding(signing_key):
    from audit.models import AuditEvent

    call_command("signing_keys", "revoke", "--kid", signing_key.kid, "--reason", "\u200b key leaked \u200b")
    assert AuditEvent.objects.filter(action="signingkey.revoke").get().reason == "key leaked"


def test_the_key_service_itself_refuses_an_invisible_reason(db):
    """Not only the doors: a caller of the service with a zero-width reason is refused too."""
    from issuer.keys.services import (
        SigningKeyRefused,
        signing_key_create,
        signing_key_ensure_active,
        signing_key_revoke,
    )

    signing_key_ensure_active()
    pending = signing_key_create()
    with pytest.raises(SigningKeyRefused, match="needs a reason"):
        signing_key_revoke(pending.kid, reason="\u200b")
