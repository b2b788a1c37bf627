"""Signing keys (private part encrypted at rest, or kept in a PKCS#11 token), the tokens minted with them, and the
job locks."""

import uuid

from django.db import models
from django.db.models import Q


class SigningKey(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "pending (published, not signing)"
        ACTIVE = "active", "active (signing)"
        RETIRED = "retired", "retired (published, not signing)"
        REVOKED = "revoked", "revoked (withdrawn)"

    class Backend(models.TextChoices):
        LOCAL = "local", "local (encrypted in the database)"
        PKCS11 = "pkcs11", "PKCS#11 token (the private key never leaves it)"

    PUBLISHED_STATES = (State.PENDING, State.ACTIVE, State.RETIRED)

    kid = models.CharField(max_length=64, unique=True, editable=False, help_text="RFC 7638 SHA-256 thumbprint.")
    algorithm = models.CharField(max_length=8, default="RS256", editable=False)
    key_size = models.PositiveIntegerField(default=2048, editable=False)
    public_jwk = models.JSONField(editable=False)
    backend = models.CharField(max_length=8, choices=Backend.choices, default=Backend.LOCAL, editable=False)
    # local: the PKCS#8 PEM, encrypted (issuer.keys.encryption); pkcs11: none, the private key is in the token.
    private_key_encrypted = models.BinaryField(null=True, editable=False)
    # pkcs11: the private key object's CKA_LABEL and CKA_ID (hex) in the token; empty for local keys.
    token_key_label = models.CharField(max_length=64, blank=True, default="", editable=False)
    token_key_id = models.CharField(max_length=64, blank=True, default="", editable=False)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING, editable=False)
    created_at = models.DateTimeField(editable=False, help_text="Also the moment it was first published.")
    activated_at = models.DateTimeField(null=True, blank=True, editable=False)
    retired_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["created_at", "id"]
        permissions = [
            ("operate_signingkey", "Can run the signing-key lifecycle (create, activate, retire, revoke, purge)")
        ]  # noqa: E501
        constraints = [
            models.UniqueConstraint(
                fields=["state"],
                condition=Q(state="active"),
                name="exactly_one_active_signing_key",
                violation_error_message="Only one signing key can be active.",
            ),
            models.CheckConstraint(
                condition=Q(backend="local", private_key_encrypted__isnull=False, token_key_id="")
                | Q(backend="pkcs11", private_key_encrypted__isnull=True, token_key_id__gt=""),
                name="signing_key_private_part_where_its_backend_keeps_it",
                violation_error_message="A local key holds its encrypted private key; a PKCS#11 key only its id.",
            ),
            models.CheckConstraint(
                condition=Q(key_size__gte=2048),
                name="signing_key_at_least_2048_bits",
                violation_error_message="RSA keys need at least 2048 bits.",
            ),
        ]

    def __str__(self):
        return f"{self.kid[:12]}… ({self.state})"

    def __repr__(self):  # never the private part
        return f"<SigningKey kid={self.kid} state={self.state}>"


class IssuedToken(models.Model):
    """Every minted ServiceAccessToken. The token itself is kept only encrypted, to hand out again while fresh."""

    jti = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of its own: (instance, -issued_at) below serves every lookup by instance, one index less per insert.
    instance = models.ForeignKey(
        "subscriptions.Instance", on_delete=models.CASCADE, related_name="issued_tokens", db_index=False
    )
    kid = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    audiences = models.JSONField(default=list)
    duo_seat_count = models.PositiveIntegerField(default=0)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    fingerprint = models.CharField(max_length=64, help_text="Entitlement fingerprint the token was minted for.")
    reason = models.CharField(max_length=32)
    token_encrypted = models.BinaryField(null=True, editable=False)

    class Meta:
        ordering = ["-issued_at"]
        indexes = [
            models.Index(fields=["instance", "-issued_at"]),
            models.Index(fields=["kid"]),
            models.Index(fields=["issued_at"]),
            # the refresh run drops the ciphertexts of expired tokens: only the few still holding one are read
            models.Index(
                fields=["expires_at"], condition=Q(token_encrypted__isnull=False), name="issued_token_ciphertext_held"
            ),
        ]

    def __str__(self):
        return str(self.jti)

    def __repr__(self):
        return f"<IssuedToken jti={self.jti} kid={self.kid}>"


class JobLock(models.Model):
    """One row per periodic job: locked with SELECT ... FOR UPDATE so two workers or beats cannot double-act."""

    name = models.CharField(max_length=64, primary_key=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    # A run was asked for but could not be queued (broker unreachable): the next run does the work and clears it.
    pending_since = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return self.name


class FleetCount(models.Model):
    """One count of the fleet for one period (a day or an hour), kept by the rollup job (`issuer.fleet`), so the
    dashboard reads a handful of rows instead of the fleet. Gauges (stale instances, ...) are stored per day as
    the day's latest snapshot, which is also their history."""

    metric = models.CharField(max_length=64)
    period_start = models.DateTimeField()
    value = models.BigIntegerField()
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["metric", "period_start"]
        constraints = [
            models.UniqueConstraint(fields=["metric", "period_start"], name="one_count_per_metric_and_period")
        ]

    def __str__(self):
        return f"{self.metric} {self.period_start:%Y-%m-%d %H:%M} UTC = {self.value}"


class Validator(models.Model):
    """A client that fetches the JWKS or discovery (an AI gateway, another backend), told apart by User-Agent and
    address. Recorded at most once a minute per process, or at once when the key set it received changed. Anyone
    can fetch the JWKS, so a row is telemetry until an operator confirms it: the rotation policy waits only for
    confirmed validators seen lately to have fetched a set containing the pending key."""

    fingerprint = models.CharField(max_length=64, unique=True, help_text="SHA-256 of User-Agent and address.")
    user_agent = models.CharField(max_length=300, blank=True)
    address = models.CharField(max_length=64, blank=True)
    name = models.CharField(max_length=100, blank=True, help_text="The operator's name for it (optional).")
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(db_index=True)
    last_jwks_at = models.DateTimeField(null=True, blank=True)
    kids = models.JSONField(default=list, blank=True, help_text="Key ids in the last key set it fetched.")
    confirmed = models.BooleanField(
        default=False, help_text="An operator vouches for it: key activation waits until it has fetched the new key."
    )

    class Meta:
        ordering = ["-last_seen_at"]

    def __str__(self):
        return self.name or f"{self.user_agent or '(no User-Agent)'} from {self.address or '?'}"
