"""Writes on the commercial side. Every door (GraphQL, REST, admin, commands) calls these.

Each service validates with the model's own rules (`full_clean`, which includes the database constraints) and
runs in a transaction, so bad input raises `ValidationError` with a clear message and writes nothing. Writes go
through `save()`, never a bare queryset `update()`, so that listeners (the issuer's sync cache) hear of every
change to an entitlement input.
"""

import datetime as dt
import enum
import logging
import uuid
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, models, transaction
from django.utils import timezone

from audit.context import Actor
from audit.services import audit_record, audit_record_change, audit_snapshot, not_audited
from config.unavailable import TRANSIENT_FAILURES
from subscriptions.license_keys import license_key_digest, license_key_display_prefix, license_key_new
from subscriptions.models import (
    AddOnPurchase,
    Customer,
    Instance,
    InstanceIdSighting,
    SeatReport,
    Subscription,
    has_control_characters,
    new_activation_code,
)
from subscriptions.terms import one_year_after

logger = logging.getLogger(__name__)

# What an instance tells us in passing (last sync, headers, last error) is written at most this often, so the hot
# path stays read-only between writes.
SYNC_RECORD_INTERVAL = dt.timedelta(minutes=1)
# Distinct foreign instance ids kept per license key: enough to show a clone, bounded against a caller cycling ids.
SIGHTINGS_PER_INSTANCE = 20


@not_audited("writes nothing: cuts a value to its column")
def field_clip(model: type[models.Model], field_name: str, value: str) -> str:
    """`value` cut to the column's `max_length`: what an instance tells us in passing is kept, not refused."""
    return value[: model._meta.get_field(field_name).max_length]


def _save(instance, **clean_options):
    instance.full_clean(**clean_options)
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError as error:  # a race past full_clean: still a validation error, never a 500
        raise ValidationError(f"Could not save {instance._meta.verbose_name}: {error}") from error
    except DataError as error:  # what the database refuses to store (e.g. a NUL character)
        raise ValidationError(f"Could not save {instance._meta.verbose_name}: {error}") from error
    return instance


def _locked(obj):
    """The row of `obj` read again and locked until the transaction ends: a change starts from committed state."""
    return type(obj).objects.select_for_update().get(pk=obj.pk)


def _locked_update(obj, action: str, **changes):
    """Applies the changes that were given (None: keep), validated like any other write, and records them."""
    obj = _locked(obj)
    before = audit_snapshot(obj)
    _assign(obj, {name: value for name, value in changes.items() if value is not None})
    _save(obj)
    audit_record_change(action, obj, before)
    return obj


def _locked_set(obj, action: str, **values):
    """Sets fields that need no validation (flags, generated codes) with a narrow UPDATE, and records them."""
    obj = _locked(obj)
    before = audit_snapshot(obj)
    _assign(obj, values)
    touched = [name for name in ("updated_at",) if hasattr(obj, name)]
    obj.save(update_fields=[*values, *touched])
    audit_record_change(action, obj, before)
    return obj


def _created(action: str, obj):
    audit_record_change(action, obj, {})
    return obj


@transaction.atomic
def customer_create(*, name: str, contact_email: str = "") -> Customer:
    return _created("customer.create", _save(Customer(name=name.strip(), contact_email=contact_email)))


@transaction.atomic
def customer_get_or_create(*, name: str) -> Customer:
    """The customer of that name, created when new (the command line's `--customer`)."""
    name = name.strip()
    Customer._meta.get_field("name").run_validators(name)
    return Customer.objects.filter(name=name).first() or customer_create(name=name)


@transaction.atomic
def subscription_create(
    *,
    customer: Customer,
    license_type: str,
    seats: int,
    starts_on: dt.date,
    expires_on: dt.date | None = None,
    trial: bool = False,
    add_ons: list[tuple[str, int]] | None = None,
) -> Subscription:
    """A subscription with its add-on purchases (each running for the subscription's whole term); without an
    expiry it runs for a year."""
    expires_on = expires_on or one_year_after(starts_on)
    subscription = _save(
        Subscription(
            customer=customer,
            license_type=license_type,
            seats=seats,
            starts_on=starts_on,
            expires_on=expires_on,
            trial=trial,
        )
    )
    _created("subscription.create", subscription)
    for add_on, quantity in add_ons or []:
        add_on_purchase_create(
            subscription=subscription,
            add_on=add_on,
            quantity=quantity,
            started_on=starts_on,
            expires_on=expires_on,
            trial=trial,
        )
    return subscription


@transaction.atomic
def subscription_update(
    subscription: Subscription, *, seats: int | None = None, expires_on: dt.date | None = None
) -> Subscription:
    """Change seats or extend (or shorten) the term."""
    return _locked_update(subscription, "subscription.update", seats=seats, expires_on=expires_on)


@transaction.atomic
def subscription_set_suspended(subscription: Subscription, suspended: bool) -> Subscription:
    action = "subscription.suspend" if suspended else "subscription.lift_suspension"
    return _locked_set(subscription, action, suspended=suspended)


@transaction.atomic
def subscription_regenerate_activation_code(subscription: Subscription) -> Subscription:
    """A new code for the subscription; the old one stops working (a bound instance keeps its license key)."""
    return _locked_set(subscription, "subscription.regenerate_activation_code", activation_code=new_activation_code())


@transaction.atomic
def add_on_purchase_create(
    *,
    subscription: Subscription,
    add_on: str,
    quantity: int,
    started_on: dt.date,
    expires_on: dt.date,
    trial: bool = False,
) -> AddOnPurchase:
    purchase = AddOnPurchase(
        subscription=subscription,
        add_on=add_on,
        quantity=quantity,
        started_on=started_on,
        expires_on=expires_on,
        trial=trial,
    )
    return _created("addonpurchase.create", _save(purchase))


@transaction.atomic
def add_on_purchase_update(
    purchase: AddOnPurchase, *, quantity: int | None = None, expires_on: dt.date | None = None
) -> AddOnPurchase:
    return _locked_update(purchase, "addonpurchase.update", quantity=quantity, expires_on=expires_on)


@transaction.atomic
def add_on_purchase_cancel(purchase: AddOnPurchase, at: dt.datetime | None = None) -> AddOnPurchase:
    """Ends the purchase now; the next token sync drops its scopes. Cancelling twice keeps the first time."""
    purchase = _locked(purchase)
    if purchase.cancelled_at is None:
        purchase = _locked_set(purchase, "addonpurchase.cancel", cancelled_at=at or timezone.now())
    return purchase


@transaction.atomic
def object_save_from_form(obj: models.Model) -> models.Model:
    """What a Django admin form saved (any editable field of a customer, subscription or purchase): validated like
    the named services and recorded as `<model>.create` or `<model>.update` with the fields it changed."""
    created = obj._state.adding
    before = {} if created else audit_snapshot(_locked(obj))
    _save(obj)
    audit_record_change(f"{obj._meta.model_name}.{'create' if created else 'update'}", obj, before)
    return obj


# What the audit trail records a deletion of, one event per row, also when the database deletes it with its parent.
AUDITED_MODELS = (Customer, Subscription, AddOnPurchase, Instance)


@transaction.atomic
def object_delete_from_form(obj: models.Model) -> None:
    """A superuser's delete in Django admin (no role has a delete permission), recorded with what was deleted: one
    event per audited row it takes along (a subscription's purchases), a count in the reason for the records that
    go with it (an instance's token records and seat reports)."""
    along, counted = [], []
    for related in obj._meta.related_objects:
        if related.on_delete is not models.CASCADE:
            continue
        rows = related.related_model._base_manager.filter(**{related.field.name: obj})
        if related.related_model in AUDITED_MODELS:
            along.extend(rows)
        elif count := rows.count():
            counted.append(f"{related.related_model._meta.verbose_name_plural}: {count}")
    reason = f"deleted with it: {', '.join(counted)}" if counted else ""
    for row in along:
        _deletion_record(row, f"deleted with {obj._meta.verbose_name} {obj.pk}")
    _deletion_record(obj, reason)
    obj.delete()


def _deletion_record(obj: models.Model, reason: str) -> None:
    before = audit_snapshot(obj)
    audit_record(
        f"{obj._meta.model_name}.delete",
        obj,
        changes={name: [value, None] for name, value in before.items() if value is not None},
        reason=reason,
    )


class ActivationError(Exception):
    """A refused activation; the message is shown to the GitLab admin."""


@dataclass(frozen=True)
class Activation:
    instance: Instance
    license_key: str  # plaintext: shown once, in the activation answer
    new_subscription: bool  # no instance had activated this subscription before (GitLab's `newSubscription`)


def _normalize_code(code: str) -> str:
    return "".join(code.split()).replace("-", "").upper()


def _unique_instance_id_checked(value: str) -> str:
    """GitLab 18.x+ sends its anonymous unique id; it is stored and shown, so it must be short, printable text."""
    limit = Instance._meta.get_field("unique_instance_id").max_length
    if len(value) > limit:
        raise ActivationError(f"The unique instance id is longer than {limit} characters.")
    if has_control_characters(value):
        raise ActivationError("The unique instance id must not contain control characters.")
    return value.strip()


def _refuse_takeover(instance: Instance, subscription: Subscription) -> None:
    """An instance's UUID is no secret (it is its tokens' `sub`), so a code alone must not move an instance bound
    to another customer's subscription: that would hand the caller tokens in the victim's name and cut the victim
    off. Moving to another subscription of the same customer (a renewal with a new code) is allowed; anything
    else waits until an admin releases the instance."""
    current = instance.subscription
    if current is None or current.pk == subscription.pk or current.customer_id == subscription.customer_id:
        return
    raise ActivationError(
        "This instance is already activated with another customer's subscription. Ask your administrator to "
        "release it first."
    )


@transaction.atomic
def instance_activate(
    *,
    activation_code: str,
    instance_identifier: str,
    hostname: str = "",
    gitlab_version: str = "",
    unique_instance_id: str = "",
) -> Activation:
    """Binds the code's subscription to the instance and hands out a new license key (PROTOCOL §2.1).

    The same instance re-activating gets a fresh key and its old key stops working; another identifier is
    refused until an admin releases the binding. The subscription row is locked, so two concurrent activations
    of one code bind exactly one instance (the one-to-one constraint backs this up on databases without row
    locks).
    """
    try:
        identifier = uuid.UUID(str(instance_identifier))
    except ValueError:
        raise ActivationError("The instance identifier is not a UUID.") from None
    unique_instance_id = _unique_instance_id_checked(unique_instance_id or "")
    code = _normalize_code(activation_code or "")
    subscription = Subscription.objects.select_for_update().filter(activation_code=code).first() if code else None
    today = timezone.now().date()
    if subscription is None:
        raise ActivationError("The activation code is not valid.")
    if subscription.suspended:
        raise ActivationError("The subscription of this activation code is suspended.")
    if subscription.expires_on <= today:
        raise ActivationError("The subscription of this activation code has expired.")
    bound = Instance.objects.filter(subscription=subscription).first()
    if bound is not None and bound.instance_identifier != identifier:
        raise ActivationError(
            "This activation code is already in use by another instance. Ask your administrator to release it first."
        )
    instance = (
        Instance.objects.select_for_update(of=("self",))
        .select_related("subscription")
        .filter(instance_identifier=identifier)
        .first()
    )
    if instance is None:
        instance = Instance(instance_identifier=identifier)
    before = audit_snapshot(instance) if instance.pk else {}
    if instance.suspended:
        raise ActivationError("This instance is suspended.")
    _refuse_takeover(instance, subscription)
    license_key = license_key_new()
    now = timezone.now()
    instance.subscription = subscription
    instance.hostname = field_clip(Instance, "hostname", hostname)
    instance.gitlab_version = field_clip(Instance, "gitlab_version", gitlab_version)
    instance.unique_instance_id = unique_instance_id or instance.unique_instance_id
    instance.activated_at = now
    instance.license_key_digest = license_key_digest(license_key)
    instance.license_key_prefix = license_key_display_prefix(license_key)
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError:
        raise ActivationError("This activation code is already in use by another instance.") from None
    actor = Actor.instance(identifier)
    audit_record_change("instance.activate", instance, before, actor=actor)
    new_subscription = subscription.first_activated_at is None
    if new_subscription:
        first = audit_snapshot(subscription)
        subscription.first_activated_at = now
        subscription.save(update_fields=["first_activated_at"])
        audit_record_change("subscription.first_activation", subscription, first, actor=actor)
    return Activation(instance=instance, license_key=license_key, new_subscription=new_subscription)


@transaction.atomic
def instance_release(instance: Instance) -> Instance:
    """Unbinds the instance from its subscription: its license key stops working, the code is free again."""
    return _locked_set(instance, "instance.release", subscription=None, license_key_digest=None)


@transaction.atomic
def instance_set_suspended(instance: Instance, suspended: bool) -> Instance:
    action = "instance.suspend" if suspended else "instance.lift_suspension"
    return _locked_set(instance, action, suspended=suspended)


class SyncRecord(enum.Enum):
    NOTHING = "nothing"  # synced less than SYNC_RECORD_INTERVAL ago (or the database is unreachable): nothing written
    TOUCHED = "touched"  # only bookkeeping written (last sync, headers): not an entitlement input
    CHANGED = "changed"  # version or host name changed: saved, listeners notified


@not_audited("what an instance reports about itself: kept on the instance row, no one's decision")
def instance_sync_record(
    instance: Instance,
    *,
    gitlab_version: str,
    hostname: str = "",
    deployment_type: str = "",
    seen_instance_id: str = "",
    at: dt.datetime,
) -> SyncRecord:
    """Notes what a sync told us. A version change is written at once (it changes scopes); otherwise the row is
    touched at most once per SYNC_RECORD_INTERVAL, with a bare update (no entitlement input changes).

    Bookkeeping never fails a sync: with the database unreachable a warm sync is still served from the cache.
    """
    gitlab_version = field_clip(Instance, "gitlab_version", gitlab_version or instance.gitlab_version)
    hostname = field_clip(Instance, "hostname", hostname or instance.hostname)
    changed = gitlab_version != instance.gitlab_version or hostname != instance.hostname
    due = instance.last_sync_at is None or at - instance.last_sync_at >= SYNC_RECORD_INTERVAL
    if not (changed or due):
        return SyncRecord.NOTHING
    bookkeeping = {
        "last_sync_at": at,
        "deployment_type": field_clip(Instance, "deployment_type", deployment_type or instance.deployment_type),
        "last_seen_instance_id": field_clip(
            Instance, "last_seen_instance_id", seen_instance_id or instance.last_seen_instance_id
        ),
    }
    try:
        with transaction.atomic():
            if changed:
                instance.gitlab_version, instance.hostname = gitlab_version, hostname
                _assign(instance, bookkeeping)
                instance.save(update_fields=["gitlab_version", "hostname", *bookkeeping])
                return SyncRecord.CHANGED
            Instance.objects.filter(pk=instance.pk).update(**bookkeeping)
    except TRANSIENT_FAILURES:
        logger.warning(
            "sync bookkeeping skipped: the database or cache is unavailable", extra={"instance": instance.pk}
        )
        return SyncRecord.NOTHING
    _assign(instance, bookkeeping)
    return SyncRecord.TOUCHED


def _assign(instance: Instance, values: dict) -> None:
    for name, value in values.items():
        setattr(instance, name, value)


@not_audited("the last refusal an instance was given: diagnosis, no one's decision")
def instance_error_record(instance: Instance, message: str, *, at: dt.datetime) -> bool:
    """Remembers the last refusal an instance was given (the back office's diagnosis). Written when the message
    changes or at most once per SYNC_RECORD_INTERVAL, so a refused instance retrying costs no write per request.
    Returns whether it wrote (the caller re-stores a cached copy of `instance`)."""
    message = field_clip(Instance, "last_error", message)
    if message == instance.last_error and instance.last_error_at and at - instance.last_error_at < SYNC_RECORD_INTERVAL:
        return False
    values = {"last_error": message, "last_error_at": at}
    try:
        Instance.objects.filter(pk=instance.pk).update(**values)
    except TRANSIENT_FAILURES:
        return False
    _assign(instance, values)
    return True


@not_audited("a sighting of a cloned instance: kept in its own table")
def instance_foreign_id_record(instance: Instance, seen_instance_id: str, *, at: dt.datetime) -> None:
    """Notes an X-Gitlab-Instance-Id that contradicts the bound instance (a clone using its license key): at most
    once per SYNC_RECORD_INTERVAL per id, and at most SIGHTINGS_PER_INSTANCE distinct ids per instance."""
    seen = field_clip(InstanceIdSighting, "seen_instance_id", seen_instance_id)
    try:
        sighting = InstanceIdSighting.objects.filter(instance=instance, seen_instance_id=seen).first()
        if sighting is not None:
            if at - sighting.last_seen_at >= SYNC_RECORD_INTERVAL:
                InstanceIdSighting.objects.filter(pk=sighting.pk).update(last_seen_at=at)
            return
        if InstanceIdSighting.objects.filter(instance=instance).count() >= SIGHTINGS_PER_INSTANCE:
            oldest = InstanceIdSighting.objects.filter(instance=instance).order_by("last_seen_at")[:1]
            InstanceIdSighting.objects.filter(pk__in=list(oldest.values_list("pk", flat=True))).delete()
        with transaction.atomic():
            InstanceIdSighting.objects.create(
                instance=instance, seen_instance_id=seen, first_seen_at=at, last_seen_at=at
            )
    except IntegrityError:  # the same id recorded by a concurrent request: already noted
        return
    except TRANSIENT_FAILURES:
        logger.warning("instance id sighting skipped: the database is unavailable", extra={"instance": instance.pk})


@dataclass(frozen=True)
class AddOnMetric:
    add_on_type: str
    purchased_seats: int
    assigned_seats: int


@not_audited("a seat report is itself a record of what the instance reported")
@transaction.atomic
def seat_report_record(
    *,
    instance: Instance,
    reported_at: dt.datetime,
    gitlab_version: str,
    billable_users: int,
    max_historical_users: int,
    hostname: str = "",
    unique_instance_id: str = "",
    add_on_metrics: list[AddOnMetric] = (),
) -> SeatReport:
    metrics = [
        {"add_on_type": m.add_on_type, "purchased_seats": m.purchased_seats, "assigned_seats": m.assigned_seats}
        for m in add_on_metrics
    ]
    report = _save(
        SeatReport(
            instance=instance,
            reported_at=reported_at,
            gitlab_version=field_clip(SeatReport, "gitlab_version", gitlab_version),
            billable_users=billable_users,
            max_historical_users=max_historical_users,
            add_on_metrics=metrics,
            has_overage=any(m.assigned_seats > m.purchased_seats for m in add_on_metrics),
        )
    )
    updates = {}
    if unique_instance_id and unique_instance_id != instance.unique_instance_id:
        updates["unique_instance_id"] = field_clip(Instance, "unique_instance_id", unique_instance_id)
    if hostname and hostname != instance.hostname:
        updates["hostname"] = field_clip(Instance, "hostname", hostname)
    if updates:
        _assign(instance, updates)
        instance.save(update_fields=list(updates))
    return report
