"""Changes made through Django's own admin pages (users, their roles, admin API tokens) leave events too: they are
written by Django and knox, not by our services, so their signals record them, in the same transaction when
there is one (Django admin saves in one)."""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.dispatch import receiver
from knox.models import AuthToken

from audit.services import audit_changes, audit_record

# What is worth an event on a user: who may do what. Never the password hash (a password change says only that).
USER_FIELDS = ("username", "is_active", "is_staff", "is_superuser")
User = get_user_model()


def _user_fields(user) -> dict:
    return {name: getattr(user, name) for name in USER_FIELDS}


def _record(*args, **kwargs) -> None:
    with transaction.atomic():  # joins the change's transaction, or makes one outside any
        audit_record(*args, **kwargs)


@receiver(pre_save, sender=User)
def _user_before(sender, instance, **kwargs):
    stored = sender.objects.filter(pk=instance.pk).values(*USER_FIELDS, "password").first() if instance.pk else None
    instance._audit_before = stored


@receiver(post_save, sender=User)
def _user_saved(sender, instance, created, **kwargs):
    before = getattr(instance, "_audit_before", None) or {}
    changes = audit_changes({k: v for k, v in before.items() if k != "password"}, _user_fields(instance))
    if before and before.get("password") != instance.password:
        changes["password"] = ["(set)", "(changed)"]
    if created or changes:
        _record("user.create" if created else "user.update", instance, changes=changes)


@receiver(post_delete, sender=User)
def _user_deleted(sender, instance, **kwargs):
    _record("user.delete", instance, changes={k: [v, None] for k, v in _user_fields(instance).items()})


@receiver(m2m_changed, sender=User.groups.through)
def _roles_changed(sender, instance, action, reverse, pk_set, **kwargs):
    """A role granted or taken away (from the user's side or the group's)."""
    if action not in ("post_add", "post_remove", "post_clear") or reverse:
        return
    names = sorted(instance.groups.values_list("name", flat=True))
    _record(
        "user.roles", instance, changes={"roles": [f"{action.removeprefix('post_')} {sorted(pk_set or [])}", names]}
    )


@receiver(post_save, sender=AuthToken)
def _api_token_created(sender, instance, created, **kwargs):
    if created:  # the token is shown once and stored as a digest: only its public prefix is recorded
        _record(
            "apitoken.create",
            object_type="authtoken",
            object_id=instance.token_key,
            changes={"owner": [None, instance.user.get_username()], "expiry": [None, str(instance.expiry)]},
        )


@receiver(post_delete, sender=AuthToken)
def _api_token_revoked(sender, instance, **kwargs):
    _record("apitoken.revoke", object_type="authtoken", object_id=instance.token_key, changes={})
