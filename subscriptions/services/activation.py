"""An instance binds itself to a subscription with its activation code; admins release and suspend it."""

import uuid
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.context import Actor
from audit.services import audit_record, audit_record_change, audit_snapshot
from subscriptions.license_keys import license_key_digest, license_key_display_prefix, license_key_new
from subscriptions.models import Customer, Instance, Subscription, has_control_characters
from subscriptions.writes import field_clip, locked, locked_set


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


class RebindRefused(ActivationError):
    """A released instance claimed by a customer the release did not name; recorded, then refused."""

    def __init__(self, instance: Instance, subscription: Subscription):
        super().__init__(
            "This instance was released for re-activation by a particular customer. Ask your administrator."
        )
        self.instance, self.subscription = instance, subscription


def _refuse_unnamed_rebind(instance: Instance, subscription: Subscription) -> None:
    """A released UUID is reserved for the customer it was released from, or the transfer target the admin named:
    whoever else holds a valid code would otherwise bind it first, lock the real instance out and receive tokens
    with its UUID as `sub`. The refusal does not say which customer the UUID is reserved for."""
    if instance.pk is None or instance.subscription_id is not None or instance.released_from_id is None:
        return
    if subscription.customer_id not in (instance.released_from_id, instance.release_transfer_to_id):
        raise RebindRefused(instance, subscription)


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


def instance_activate(
    *,
    activation_code: str,
    instance_identifier: str,
    hostname: str = "",
    gitlab_version: str = "",
    unique_instance_id: str = "",
) -> Activation:
    """Binds the code's subscription to the instance (`_instance_activate`); a refused re-bind of a released
    instance is recorded in the audit trail in a transaction of its own, since the activation's is rolled back."""
    try:
        return _instance_activate(
            activation_code=activation_code,
            instance_identifier=instance_identifier,
            hostname=hostname,
            gitlab_version=gitlab_version,
            unique_instance_id=unique_instance_id,
        )
    except RebindRefused as refusal:
        with transaction.atomic():
            audit_record(
                "instance.rebind_refused",
                refusal.instance,
                changes={"subscription": [None, refusal.subscription.pk]},
                actor=Actor.instance(refusal.instance.instance_identifier),
                reason=f"released from customer {refusal.instance.released_from_id}; "
                f"claimed by customer {refusal.subscription.customer_id}",
            )
        raise


@transaction.atomic
def _instance_activate(
    *,
    activation_code: str,
    instance_identifier: str,
    hostname: str,
    gitlab_version: str,
    unique_instance_id: str,
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
    _refuse_unnamed_rebind(instance, subscription)
    license_key = license_key_new()
    now = timezone.now()
    instance.subscription = subscription
    instance.hostname = field_clip(Instance, "hostname", hostname)
    instance.gitlab_version = field_clip(Instance, "gitlab_version", gitlab_version)
    instance.unique_instance_id = unique_instance_id or instance.unique_instance_id
    instance.activated_at = now
    instance.license_key_digest = license_key_digest(license_key)
    instance.license_key_prefix = license_key_display_prefix(license_key)
    instance.released_from = instance.release_transfer_to = None  # bound again: the reservation is spent
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
def instance_release(instance: Instance, *, transfer_to: Customer | None = None, reason: str = "") -> Instance:
    """Unbinds the instance from its subscription: its license key stops working, the code is free again. Only the
    customer it was bound to, or `transfer_to`, may bind the UUID again (until `instance_release_clear`)."""
    instance = locked(instance)
    released_from = instance.subscription.customer if instance.subscription_id else instance.released_from
    return locked_set(
        instance,
        "instance.release",
        subscription=None,
        license_key_digest=None,
        released_from=released_from,
        release_transfer_to=transfer_to,
        reason=reason,
    )


@transaction.atomic
def instance_release_clear(instance: Instance, *, reason: str = "") -> Instance:
    """Lifts a release's reservation: any valid code may bind the UUID again, as for one never activated."""
    return locked_set(instance, "instance.release_clear", released_from=None, release_transfer_to=None, reason=reason)


@transaction.atomic
def instance_set_suspended(instance: Instance, suspended: bool, *, reason: str = "") -> Instance:
    action = "instance.suspend" if suspended else "instance.lift_suspension"
    return locked_set(instance, action, suspended=suspended, reason=reason)
