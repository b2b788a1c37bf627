"""Any change of a signing key, from any door, drops the cached key set: at once, and again once the transaction
commits (a request between the two may have cached the state before the commit)."""

from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from config.health import readiness_probe
from issuer.models import SigningKey
from issuer.selectors import keyset_invalidate
from issuer.sync_state import sync_state_enabled, sync_state_invalidate, sync_state_invalidate_subscription
from subscriptions.models import AddOnPurchase, Instance, Subscription


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


# --- the sync-state cache: every write to an entitlement input bumps the license key's generation -------------


@receiver(pre_save, sender=Instance)
def _instance_changing(sender, instance, raw=False, **kwargs):
    """The digest may be about to change (re-activation, release): the old one must stop being served."""
    if instance.pk and not raw and sync_state_enabled():
        old = Instance.objects.filter(pk=instance.pk).values_list("license_key_digest", flat=True).first()
        sync_state_invalidate([old])


@receiver([post_save, post_delete], sender=Instance)
def _instance_changed(sender, instance, **kwargs):
    sync_state_invalidate([instance.license_key_digest])


@receiver([post_save, post_delete], sender=Subscription)
def _subscription_changed(sender, instance, **kwargs):
    sync_state_invalidate_subscription(instance.pk)


@receiver([post_save, post_delete], sender=AddOnPurchase)
def _purchase_changed(sender, instance, **kwargs):
    sync_state_invalidate_subscription(instance.subscription_id)
