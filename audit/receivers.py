"""Changes made through Django's own admin pages (users, their roles, admin API tokens) leave events too: they are
written by Django and knox, not by our services, so their signals record them, in the same transaction when
there is one (Django admin saves in one)."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
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


def _label(obj) -> str:
    if isinstance(obj, Permission):
        return f"{obj.content_type.app_label}.{obj.codename}"
    return str(getattr(obj, "name", None) or obj.get_username())


def _labels(objects) -> list[str]:
    return sorted(_label(obj) for obj in objects)


def _who_may_do_what(through, action_name: str, accessor: str, key: str):
    """One event per owner (the user or role whose rights changed) for every change of the relation `through`, made
    from either side (`user.groups.add(role)` or `role.user_set.add(user)`), clears included."""
    owner_model = through._meta.get_field(through._meta.fields[1].name).related_model

    def owners_and_others(instance, reverse, model, pk_set):
        if not reverse:
            return [instance], list(model.objects.filter(pk__in=pk_set or []))
        return list(owner_model.objects.filter(pk__in=pk_set or [])), [instance]

    @receiver(m2m_changed, sender=through, weak=False)
    def changed(sender, instance, action, reverse, model, pk_set, **kwargs):
        if action == "pre_clear":  # the relation is about to be emptied: remember what it held
            related = getattr(instance, accessor) if not reverse else model.objects.filter(**{accessor: instance})
            instance._audit_cleared = set(related.values_list("pk", flat=True))
            return
        if action not in ("post_add", "post_remove", "post_clear"):
            return
        if action == "post_clear":
            pk_set = getattr(instance, "_audit_cleared", set())
        if not pk_set:
            return
        owners, others = owners_and_others(instance, reverse, model, pk_set)
        verb = "add" if action == "post_add" else "remove"
        for owner in owners:
            now = _labels(getattr(owner, accessor).all())
            _record(action_name, owner, changes={key: [f"{verb} {_labels(others)}", now]})

    return changed


_who_may_do_what(User.groups.through, "user.roles", "groups", key="roles")
_who_may_do_what(User.user_permissions.through, "user.permissions", "user_permissions", key="permissions")
_who_may_do_what(Group.permissions.through, "group.permissions", "permissions", key="permissions")


@receiver(pre_save, sender=Group)
@receiver(pre_save, sender=Permission)
def _named_before(sender, instance, **kwargs):
    instance._audit_name = sender.objects.filter(pk=instance.pk).values_list("name", flat=True).first()


@receiver(post_save, sender=Group)
@receiver(post_save, sender=Permission)
def _named_saved(sender, instance, created, **kwargs):
    """A role (or a permission) created or renamed."""
    before = getattr(instance, "_audit_name", None)
    kind = sender._meta.model_name
    if created:
        _record(f"{kind}.create", instance, changes={"name": [None, instance.name]})
    elif before != instance.name:
        _record(f"{kind}.rename", instance, changes={"name": [before, instance.name]})


@receiver(post_delete, sender=Group)
@receiver(post_delete, sender=Permission)
def _named_deleted(sender, instance, **kwargs):
    _record(f"{sender._meta.model_name}.delete", instance, changes={"name": [instance.name, None]})


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
