"""Who bought what, and which instance may use it. Invariants live in the database as constraints."""

import secrets
import unicodedata
import uuid

from django.core.exceptions import ValidationError
from django.core.validators import ProhibitNullCharactersValidator
from django.db import models
from django.db.models import F, Q

from unit_primitives.catalog import get_catalog

# Easy to read aloud and type: no 0/O, 1/I/L.
ACTIVATION_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
ACTIVATION_CODE_LENGTH = 24


def new_activation_code() -> str:
    return "".join(secrets.choice(ACTIVATION_CODE_ALPHABET) for _ in range(ACTIVATION_CODE_LENGTH))


def new_purchase_id() -> str:
    return f"P-{uuid.uuid4().hex[:12].upper()}"


def has_control_characters(value: str) -> bool:
    return any(unicodedata.category(character) == "Cc" for character in value)


def validate_printable(value: str) -> None:
    """What an instance tells us about itself is shown in the back office: text, never control characters."""
    if has_control_characters(value):
        raise ValidationError("Control characters are not allowed.")


def validate_license_type(value: str) -> None:
    if value not in get_catalog().license_types:
        known = ", ".join(get_catalog().license_types)
        raise ValidationError(f"Unknown license type {value!r}; the catalog knows: {known}.")


def validate_add_on(value: str) -> None:
    if value not in get_catalog().add_ons:
        known = ", ".join(get_catalog().add_ons)
        raise ValidationError(f"Unknown add-on {value!r}; the catalog knows: {known}.")


def _dates_in_order(start: str, end: str, name: str, message: str) -> models.CheckConstraint:
    return models.CheckConstraint(condition=Q(**{f"{start}__lt": F(end)}), name=name, violation_error_message=message)


def _at_least_one(field: str, name: str, message: str) -> models.CheckConstraint:
    return models.CheckConstraint(condition=Q(**{f"{field}__gte": 1}), name=name, violation_error_message=message)


class SubscriptionQuerySet(models.QuerySet):
    def active_on(self, day):
        """Running on `day` and not suspended; `Subscription.is_active_on` is the same rule for a row in memory."""
        return self.filter(suspended=False, starts_on__lte=day, expires_on__gt=day)


class AddOnPurchaseQuerySet(models.QuerySet):
    def active_on(self, day):
        """Running on `day`, not cancelled and not suspended; `AddOnPurchase.is_active_on` is the same rule for rows
        in memory (the purchases a cached sync state holds, judged on the day of each sync)."""
        return self.filter(started_on__lte=day, expires_on__gt=day, cancelled_at__isnull=True, suspended=False)


class Customer(models.Model):
    name = models.CharField(max_length=200, unique=True, validators=[ProhibitNullCharactersValidator()])
    contact_email = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def audit_customer(self) -> "Customer":
        """The customer an audit event of this object belongs to (`audit.services.audit_record` reads it)."""
        return self


class Subscription(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="subscriptions")
    license_type = models.CharField(max_length=32, validators=[validate_license_type], help_text="premium or ultimate")
    seats = models.PositiveIntegerField(help_text="Users in license.")
    starts_on = models.DateField()
    expires_on = models.DateField(help_text="First day without access.")
    trial = models.BooleanField(default=False)
    activation_code = models.CharField(max_length=32, unique=True, default=new_activation_code, editable=False)
    suspended = models.BooleanField(default=False)
    # When an instance first activated this subscription: GitLab's `newSubscription` is true only on that one.
    first_activated_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = SubscriptionQuerySet.as_manager()

    # What lists of subscriptions show: the back office's columns and the admin API's fields.
    SUMMARY_FIELDS = ["customer", "license_type", "seats", "starts_on", "expires_on", "trial", "suspended"]

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["created_at", "id"]), models.Index(fields=["expires_on"])]
        permissions = [
            ("view_activation_code", "Can see activation codes"),
            ("regenerate_activation_code", "Can regenerate activation codes"),
        ]
        constraints = [
            _dates_in_order(
                "starts_on",
                "expires_on",
                "subscription_starts_before_expiry",
                "The subscription must start before it expires.",
            ),
            _at_least_one("seats", "subscription_has_seats", "A subscription needs at least one seat."),
        ]

    def __str__(self):
        return f"{self.customer} · {self.license_type} · {self.starts_on}–{self.expires_on}"

    @property
    def audit_customer(self) -> Customer:
        return self.customer

    def is_active_on(self, day) -> bool:
        return not self.suspended and self.starts_on <= day < self.expires_on


class AddOnPurchase(models.Model):
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="add_on_purchases")
    add_on = models.CharField(max_length=64, validators=[validate_add_on])
    quantity = models.PositiveIntegerField(help_text="Seats purchased.")
    started_on = models.DateField()
    expires_on = models.DateField(help_text="First day without access.")
    trial = models.BooleanField(default=False)
    purchase_id = models.CharField(max_length=32, unique=True, default=new_purchase_id, editable=False)
    # A cancelled purchase is inactive from the moment of cancellation, whatever its dates say.
    cancelled_at = models.DateTimeField(null=True, blank=True, editable=False)
    # A suspended purchase is inactive until it is resumed (a cancellation is for good).
    suspended = models.BooleanField(default=False, db_default=False, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AddOnPurchaseQuerySet.as_manager()

    class Meta:
        ordering = ["started_on", "id"]
        constraints = [
            _dates_in_order(
                "started_on",
                "expires_on",
                "add_on_purchase_starts_before_expiry",
                "The add-on purchase must start before it expires.",
            ),
            _at_least_one(
                "quantity", "add_on_purchase_quantity_positive", "An add-on purchase needs a quantity of at least 1."
            ),
        ]
        indexes = [
            models.Index(fields=["subscription", "expires_on"]),
            models.Index(fields=["started_on", "id"]),
            models.Index(fields=["expires_on"]),
        ]

    def __str__(self):
        return f"{self.add_on} × {self.quantity} ({self.started_on}–{self.expires_on})"

    @property
    def audit_customer(self) -> Customer:
        return self.subscription.customer

    def is_active_on(self, day) -> bool:
        return not self.suspended and self.cancelled_at is None and self.started_on <= day < self.expires_on


class Instance(models.Model):
    # One instance per subscription at a time (PROTOCOL §2.1); null once an admin releases the binding.
    subscription = models.OneToOneField(
        Subscription, on_delete=models.PROTECT, null=True, blank=True, related_name="instance"
    )
    instance_identifier = models.UUIDField(unique=True, help_text="GitLab's instance UUID: the token's `sub`.")
    unique_instance_id = models.CharField(
        max_length=64, blank=True, help_text="GitLab's anonymous unique instance id (sent by 18.x and newer)."
    )
    hostname = models.CharField(max_length=255, blank=True)
    gitlab_version = models.CharField(max_length=64, blank=True)
    deployment_type = models.CharField(
        max_length=32, blank=True, help_text="X-Gitlab-Deployment-Type: self-managed, dedicated or .com."
    )
    last_seen_instance_id = models.CharField(
        max_length=64, blank=True, help_text="The last X-Gitlab-Instance-Id this license key was sent with."
    )
    # The last refusal this instance was given (diagnosis in the back office), and when.
    last_error = models.CharField(max_length=255, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    # Peppered HMAC-SHA256 of the license key; the key itself is never stored.
    license_key_digest = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)
    license_key_prefix = models.CharField(max_length=16, blank=True, editable=False)
    suspended = models.BooleanField(default=False)
    # After a release, who may bind this UUID again: the customer it was released from, or the transfer target an
    # admin named. Anyone else's code is refused until an admin clears the release (never activated: first come).
    released_from = models.ForeignKey(
        Customer, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    release_transfer_to = models.ForeignKey(
        Customer, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-activated_at", "-id"]
        indexes = [
            models.Index(fields=["activated_at", "id"]),
            models.Index(fields=["license_key_prefix"]),
            models.Index(fields=["unique_instance_id"]),
        ]
        permissions = [
            ("suspend_instance", "Can suspend and lift instances"),
            ("release_instance", "Can release an instance's binding"),
        ]

    def __str__(self):
        return f"{self.hostname or 'instance'} ({self.instance_identifier})"

    @property
    def audit_customer(self) -> Customer | None:
        """Its subscription's customer, or after a release the customer it was released from."""
        return self.subscription.customer if self.subscription_id else self.released_from

    @property
    def last_sync_at(self):
        """When this instance last synced (None: never), kept on a row of its own (`InstanceLastSync`). A list that
        shows it loads it with `select_related("last_sync")`."""
        try:
            return self.last_sync.at
        except InstanceLastSync.DoesNotExist:
            return None


class InstanceLastSync(models.Model):
    """An instance's last sync, on a narrow row of its own: the one write the hourly sync of a fleet makes.

    On the instance row that write changed an indexed column, so PostgreSQL wrote a new entry into each of the row's
    twelve indexes (1,836 bytes of write-ahead log a sync, and index bloat for vacuum to clean); here it touches this
    row and its two indexes. The instance row is written only when what it holds changes (version, host name, the
    headers an instance sends). Made at an instance's first sync (`instance_sync_observed`)."""

    instance = models.OneToOneField(Instance, on_delete=models.CASCADE, primary_key=True, related_name="last_sync")
    at = models.DateTimeField(db_index=True)

    def __str__(self):
        return f"{self.instance_id} synced at {self.at:%Y-%m-%d %H:%M:%S}"


class SeatReport(models.Model):
    """One seat-link report, kept as history."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="seat_reports")
    reported_at = models.DateTimeField(help_text="The instance's own timestamp.")
    received_at = models.DateTimeField(auto_now_add=True)
    gitlab_version = models.CharField(max_length=64, blank=True)
    billable_users = models.PositiveIntegerField()
    max_historical_users = models.PositiveIntegerField()
    # [{"add_on_type": str, "purchased_seats": int, "assigned_seats": int}, ...]
    add_on_metrics = models.JSONField(default=list, blank=True)
    has_overage = models.BooleanField(default=False, help_text="Some add-on has more seats assigned than purchased.")

    class Meta:
        ordering = ["-reported_at", "-id"]
        indexes = [
            models.Index(fields=["instance", "-reported_at"]),
            models.Index(fields=["instance", "-received_at"]),  # an instance's latest report is the last received
            models.Index(fields=["reported_at", "id"]),
            models.Index(fields=["-reported_at"], condition=models.Q(has_overage=True), name="seat_report_overage"),
        ]

    def __str__(self):
        return f"{self.instance_id} @ {self.reported_at:%Y-%m-%d %H:%M} UTC"


class InstanceIdSighting(models.Model):
    """An X-Gitlab-Instance-Id that differs from the bound instance, seen with its license key: the mark of a
    cloned instance (newer AI gateways refuse its tokens). Kept per (instance, id), with first and last sight."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="foreign_id_sightings")
    seen_instance_id = models.CharField(max_length=64)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["-last_seen_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["instance", "seen_instance_id"], name="instance_id_sighting_unique")
        ]
        indexes = [models.Index(fields=["last_seen_at"])]

    def __str__(self):
        return f"{self.seen_instance_id} with the key of {self.instance_id}"
