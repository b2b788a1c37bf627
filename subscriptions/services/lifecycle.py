"""Customers, subscriptions and add-on purchases: created, changed, suspended and deleted by people."""

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from audit.services import audit_record, audit_record_change, audit_snapshot
from subscriptions.models import AddOnPurchase, Customer, Instance, Subscription, new_activation_code
from subscriptions.terms import one_year_after
from subscriptions.writes import created_record, locked, locked_set, locked_update, validated_save


@transaction.atomic
def customer_create(*, name: str, contact_email: str = "") -> Customer:
    return created_record("customer.create", validated_save(Customer(name=name.strip(), contact_email=contact_email)))


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
    subscription = validated_save(
        Subscription(
            customer=customer,
            license_type=license_type,
            seats=seats,
            starts_on=starts_on,
            expires_on=expires_on,
            trial=trial,
        )
    )
    created_record("subscription.create", subscription)
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
    return locked_update(subscription, "subscription.update", seats=seats, expires_on=expires_on)


@transaction.atomic
def subscription_extend(
    subscription: Subscription, *, expires_on: dt.date, add_ons: list[AddOnPurchase] | tuple = ()
) -> Subscription:
    """Renews or extends the term to `expires_on`, and moves the end of each purchase of `add_ons` with it (the
    admin's *Renew / extend* page proposes those that ended, or will end, on the previous end date). A purchase of
    another subscription is refused; a cancelled one stays cancelled."""
    previous = subscription.expires_on
    if expires_on <= previous:
        raise ValidationError(f"A renewal moves the end later than {previous:%Y-%m-%d}.")
    reason = f"renewed from {previous:%Y-%m-%d}"
    subscription = locked(subscription)
    before = audit_snapshot(subscription)
    subscription.expires_on = expires_on
    validated_save(subscription)
    audit_record_change("subscription.extend", subscription, before, reason=reason)
    for purchase in add_ons:
        if purchase.subscription_id != subscription.pk:
            raise ValidationError(f"{purchase.purchase_id} is not a purchase of this subscription.")
        purchase = locked(purchase)
        before = audit_snapshot(purchase)
        purchase.expires_on = expires_on
        validated_save(purchase)
        audit_record_change("addonpurchase.extend", purchase, before, reason=reason)
    return subscription


@transaction.atomic
def subscription_set_suspended(subscription: Subscription, suspended: bool, *, reason: str = "") -> Subscription:
    action = "subscription.suspend" if suspended else "subscription.lift_suspension"
    return locked_set(subscription, action, suspended=suspended, reason=reason)


@transaction.atomic
def subscription_regenerate_activation_code(subscription: Subscription, *, reason: str = "") -> Subscription:
    """A new code for the subscription; the old one stops working (a bound instance keeps its license key)."""
    return locked_set(
        subscription, "subscription.regenerate_activation_code", activation_code=new_activation_code(), reason=reason
    )


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
    return created_record("addonpurchase.create", validated_save(purchase))


@transaction.atomic
def add_on_purchase_update(
    purchase: AddOnPurchase, *, quantity: int | None = None, expires_on: dt.date | None = None
) -> AddOnPurchase:
    return locked_update(purchase, "addonpurchase.update", quantity=quantity, expires_on=expires_on)


@transaction.atomic
def add_on_purchase_cancel(
    purchase: AddOnPurchase, at: dt.datetime | None = None, *, reason: str = ""
) -> AddOnPurchase:
    """Ends the purchase now; the next token sync drops its scopes. Cancelling twice keeps the first time."""
    purchase = locked(purchase)
    if purchase.cancelled_at is None:
        purchase = locked_set(purchase, "addonpurchase.cancel", cancelled_at=at or timezone.now(), reason=reason)
    return purchase


@transaction.atomic
def add_on_purchase_set_suspended(purchase: AddOnPurchase, suspended: bool, *, reason: str = "") -> AddOnPurchase:
    """Suspends the purchase (inactive until resumed: the next sync drops its scopes and its Duo seats) or resumes
    it. Unlike a cancellation, it can be undone."""
    action = "addonpurchase.suspend" if suspended else "addonpurchase.resume"
    return locked_set(purchase, action, suspended=suspended, reason=reason)


@transaction.atomic
def object_save_from_form(obj: models.Model) -> models.Model:
    """What a Django admin form saved (any editable field of a customer, subscription or purchase): validated like
    the named services and recorded as `<model>.create` or `<model>.update` with the fields it changed."""
    created = obj._state.adding
    before = {} if created else audit_snapshot(locked(obj))
    validated_save(obj)
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
