"""Admin API tokens (knox) die with the trust they were made under: when their user's password changes, or the user
loses staff status or is deactivated, every token of that user is deleted in the same transaction (each deletion is
audited as `apitoken.revoke` by audit/receivers.py). Wired in ConfigConfig.ready.

Django rehashes a password on login when its hasher's work factor was raised (`update_fields=["password"]`): that too
counts as a change and revokes the user's tokens, which errs on the safe side."""

from django.contrib.auth import get_user_model
from django.db.models.signals import post_save, pre_save
from knox.models import AuthToken

WATCHED = ("password", "is_staff", "is_active")
_BEFORE = "_api_token_revocation_before"


def _remember(sender, instance, raw=False, update_fields=None, **kwargs):
    if raw or instance.pk is None or (update_fields is not None and not set(WATCHED) & set(update_fields)):
        return
    setattr(instance, _BEFORE, sender.objects.filter(pk=instance.pk).values(*WATCHED).first())


def _revoke(sender, instance, created, raw=False, **kwargs):
    before = instance.__dict__.pop(_BEFORE, None)
    if created or raw or not before:
        return
    if (
        before["password"] != instance.password
        or (before["is_staff"] and not instance.is_staff)
        or (before["is_active"] and not instance.is_active)
    ):
        AuthToken.objects.filter(user=instance).delete()


def connect() -> None:
    user = get_user_model()
    pre_save.connect(_remember, sender=user, dispatch_uid="api-token-revocation-before")
    post_save.connect(_revoke, sender=user, dispatch_uid="api-token-revocation")
