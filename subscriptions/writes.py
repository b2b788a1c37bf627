"""How every service of `subscriptions.services` writes a row: validated like a form, locked, recorded in the audit
trail."""

from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, models, transaction

from audit.services import audit_record_change, audit_snapshot, not_audited


@not_audited("writes nothing: cuts a value to its column")
def field_clip(model: type[models.Model], field_name: str, value: str) -> str:
    """`value` cut to the column's `max_length`: what an instance tells us in passing is kept, not refused."""
    return value[: model._meta.get_field(field_name).max_length]


def validated_save(instance, **clean_options):
    instance.full_clean(**clean_options)
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError as error:  # a race past full_clean: still a validation error, never a 500
        raise ValidationError(f"Could not save {instance._meta.verbose_name}: {error}") from error
    except DataError as error:  # what the database refuses to store (e.g. a NUL character)
        raise ValidationError(f"Could not save {instance._meta.verbose_name}: {error}") from error
    return instance


def locked(obj):
    """The row of `obj` read again and locked until the transaction ends: a change starts from committed state."""
    return type(obj).objects.select_for_update().get(pk=obj.pk)


def locked_update(obj, action: str, **changes):
    """Applies the changes that were given (None: keep), validated like any other write, and records them."""
    obj = locked(obj)
    before = audit_snapshot(obj)
    assign(obj, {name: value for name, value in changes.items() if value is not None})
    validated_save(obj)
    audit_record_change(action, obj, before)
    return obj


def locked_set(obj, action: str, *, reason: str = "", **values):
    """Sets fields that need no validation (flags, generated codes) with a narrow UPDATE, and records them (with
    the person's reason, when the door asked for one)."""
    obj = locked(obj)
    before = audit_snapshot(obj)
    assign(obj, values)
    touched = [name for name in ("updated_at",) if hasattr(obj, name)]
    obj.save(update_fields=[*values, *touched])
    audit_record_change(action, obj, before, reason=reason)
    return obj


def created_record(action: str, obj):
    audit_record_change(action, obj, {})
    return obj


def assign(instance: models.Model, values: dict) -> None:
    for name, value in values.items():
        setattr(instance, name, value)
