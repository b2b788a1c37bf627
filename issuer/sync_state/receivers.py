"""Every write to an entitlement input bumps the license key's sync-state generation, whatever door made it
(services, admin forms, the shell): model signals on instances, subscriptions and add-on purchases."""

from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from issuer.sync_state.store import sync_state_enabled, sync_state_invalidate, sync_state_invalidate_subscription
from subscriptions.models import AddOnPurchase, Instance, Subscription


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
