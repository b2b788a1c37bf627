"""The GitLab Credits ledger: grants (pools) and usage entries per subscription, in credits (NUMERIC, never float).

A month's balance is its grants minus its usage, always recomputed from these rows (`credits.selectors`); both
tables are append-only: a correction is a new grant (an adjustment, negative or positive), never an edit."""

from django.db import models

from subscriptions.models import Instance, Subscription

CREDITS = {"max_digits": 18, "decimal_places": 6}


class CreditAccount(models.Model):
    """A subscription's credit settings: whether usage past its pools is allowed (billed as overage)."""

    subscription = models.OneToOneField(Subscription, on_delete=models.CASCADE, related_name="credit_account")
    overage_allowed = models.BooleanField(default=False)
    user_cap = models.DecimalField(
        null=True,
        blank=True,
        help_text="Credits a user may use a month (GitLab 19.4's flat cap); empty: no cap.",
        **CREDITS,
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        permissions = [("resolve_consumers", "Can ask the quota check as a service (an AI gateway)")]

    def __str__(self):
        return f"credits of {self.subscription}"

    @property
    def audit_customer(self):
        """The customer an audit event of this record belongs to (`audit.services.audit_record` reads it)."""
        return self.subscription.customer


class CreditGrant(models.Model):
    """A pool of credits. Monthly kinds (included, waiver, commitment, adjustment) name their UTC month; one-time
    credits run from `starts_on` until `expires_on` (exclusive) across months. Drawn in KIND_PRIORITY order."""

    class Kind(models.TextChoices):
        INCLUDED = "included", "included with the plan"
        WAIVER = "waiver", "monthly waiver"
        COMMITMENT = "commitment", "monthly commitment"
        ONE_TIME = "one_time", "one-time credits"
        ADJUSTMENT = "adjustment", "adjustment"

    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="credit_grants")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount = models.DecimalField(**CREDITS)
    month = models.DateField(null=True, blank=True, help_text="First day of the UTC month (monthly kinds).")
    starts_on = models.DateField(null=True, blank=True, help_text="One-time credits: first day they count.")
    expires_on = models.DateField(null=True, blank=True, help_text="One-time credits: first day they no longer do.")
    seats = models.PositiveIntegerField(null=True, blank=True, help_text="Included credits: the seats that funded it.")
    reason = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["subscription", "month"]), models.Index(fields=["subscription", "kind"])]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "month"],
                condition=models.Q(kind="included"),
                name="credits_one_included_grant_a_month",
            ),
            models.CheckConstraint(
                condition=models.Q(kind="adjustment") | models.Q(amount__gte=0),
                name="credits_grant_amount_not_negative",
                violation_error_message="Only an adjustment may be negative.",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(kind="one_time", month__isnull=True, starts_on__isnull=False)
                    & models.Q(expires_on__isnull=False, expires_on__gt=models.F("starts_on"))
                )
                | (~models.Q(kind="one_time") & models.Q(month__isnull=False)),
                name="credits_grant_period",
                violation_error_message="One-time credits need a start before their expiry; other kinds a month.",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.amount} ({self.month or f'{self.starts_on}–{self.expires_on}'})"

    @property
    def audit_customer(self):
        """The customer an audit event of this record belongs to (`audit.services.audit_record` reads it)."""
        return self.subscription.customer


class UsageEventId(models.Model):
    """Every billable event id ever accepted: what makes a redelivered event harmless. Unpartitioned and keyed by
    the id alone, so the usage table itself can be partitioned by month (a unique index there would have to
    include the partition key)."""

    event_id = models.UUIDField(primary_key=True)
    received_at = models.DateTimeField()

    def __str__(self):
        return str(self.event_id)


class UsageEvent(models.Model):
    """One billable event of the AI gateway or the Duo Workflow Service (`billable_usage` context), as received.
    `credits` is quantity × the catalog's price, or null when the event has no price (flagged, never free)."""

    event_id = models.UUIDField()  # unique through UsageEventId, which every stored event's id went into first
    # No database-level foreign keys: a batch of 100 events would check 200 of them row by row, half the cost of the
    # insert; the ids come from a join with the bound instances in the same statement, and the ORM still refuses to
    # delete a subscription or an instance that has usage (PROTECT).
    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="usage_events", db_constraint=False
    )
    instance = models.ForeignKey(Instance, on_delete=models.PROTECT, related_name="usage_events", db_constraint=False)
    event_type = models.CharField(max_length=100)
    unit_of_measure = models.CharField(max_length=50)
    quantity = models.DecimalField(**CREDITS)
    credits = models.DecimalField(null=True, blank=True, **CREDITS)
    occurred_at = models.DateTimeField()
    month = models.DateField(help_text="First day of the UTC month of occurred_at: the month it counts in.")
    realm = models.CharField(max_length=32, blank=True)
    user_key = models.CharField(
        max_length=100, blank=True, help_text="The GitLab user id (subject), else global_user_id."
    )
    feature = models.CharField(max_length=200, blank=True, help_text="feature_qualified_name, when sent.")
    correlation_id = models.CharField(max_length=100, blank=True)
    received_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["subscription", "month", "occurred_at"]),
            models.Index(fields=["subscription", "-received_at"]),
        ]

    def __str__(self):
        return f"{self.event_type} × {self.quantity} {self.unit_of_measure}"


class UserCapOverride(models.Model):
    """One user's own monthly cap, over the subscription's flat cap (GitLab 19.4's per-user overrides). A user is
    the events' `user_key`: the GitLab user id (subject), else global_user_id."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="credit_cap_overrides")
    user_key = models.CharField(max_length=100)
    cap = models.DecimalField(**CREDITS)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subscription", "user_key"], name="credits_one_cap_a_user"),
            models.CheckConstraint(
                condition=models.Q(cap__gte=0),
                name="credits_cap_not_negative",
                violation_error_message="A cap is 0 or more.",
            ),
        ]

    def __str__(self):
        return f"{self.user_key}: {self.cap}"

    @property
    def audit_customer(self):
        """The customer an audit event of this record belongs to (`audit.services.audit_record` reads it)."""
        return self.subscription.customer


class DailyUsage(models.Model):
    """The usage entries summed per subscription, UTC day and user, written in the same statement as the entries:
    what statements, the quota check and the fleet's bands read instead of every event of a month. It speeds reads
    and never replaces the entries (`credits.selectors.daily_usage_mismatches` compares the two)."""

    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="credit_days", db_constraint=False
    )
    day = models.DateField()
    month = models.DateField()
    user_key = models.CharField(max_length=100, blank=True)
    credits = models.DecimalField(default=0, **CREDITS)
    events = models.PositiveBigIntegerField(default=0)
    unpriced = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subscription", "day", "user_key"], name="credits_one_day_a_user")
        ]
        indexes = [models.Index(fields=["subscription", "month"]), models.Index(fields=["month"])]

    def __str__(self):
        return f"{self.day} {self.user_key or '—'}: {self.credits}"
