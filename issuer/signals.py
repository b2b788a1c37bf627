"""Any change of a signing key, from any door, drops the cached key set: at once, and again once the transaction
commits (a request between the two may have cached the state before the commit)."""

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from config.health import readiness_probe
from issuer.models import SigningKey
from issuer.selectors import keyset_invalidate


@receiver([post_save, post_delete], sender=SigningKey)
def _signing_key_changed(**kwargs):
    keyset_invalidate()
    transaction.on_commit(keyset_invalidate)


@readiness_probe
def _active_signing_key():
    try:
        ok = SigningKey.objects.filter(state=SigningKey.State.ACTIVE).exists()
    except Exception as error:
        return "signing_key", False, type(error).__name__
    return "signing_key", ok, "ok" if ok else "no active signing key"
