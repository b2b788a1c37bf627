"""Any change of a signing key, from any door, drops the cached key set: at once, and again once the transaction
commits (a request between the two may have cached the state before the commit). A revoke is announced on
commit with `signing_key_revoked`, so the job layer can re-mint without the services importing it."""

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import Signal, receiver

from issuer.keys.selectors import keyset_invalidate
from issuer.models import SigningKey

# Sent once the revoking transaction has committed; `tasks.py` answers it by enqueuing the token refresh.
signing_key_revoked = Signal()


@receiver([post_save, post_delete], sender=SigningKey)
def _signing_key_changed(**kwargs):
    keyset_invalidate()
    transaction.on_commit(keyset_invalidate)
