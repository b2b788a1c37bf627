"""The audit trail: one append-only row per change a person, a command, a job or an instance made."""

from django.db import models


class AuditEvent(models.Model):
    """Written by the services, in the transaction of the change it records; never changed or deleted afterwards
    (on PostgreSQL a trigger refuses UPDATE and DELETE; only the retention purge may delete, see `services`)."""

    class ActorKind(models.TextChoices):
        USER = "user"
        CLI = "cli"
        JOB = "job"
        INSTANCE = "instance"
        ANONYMOUS = "anonymous"

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(db_index=True)
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    actor_name = models.CharField(max_length=150, help_text="Username at the time, OS user, task name or instance.")
    actor_user_id = models.BigIntegerField(null=True, blank=True, help_text="Kept when the user is deleted.")
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    customer_id = models.BigIntegerField(
        null=True, blank=True, help_text="The customer the object belonged to at the time (kept when it is deleted)."
    )
    customer_name = models.CharField(
        max_length=200, blank=True, default="", db_default="", help_text="That customer's name at the time."
    )
    changes = models.JSONField(default=dict, blank=True, help_text="{field: [before, after]}; secrets as digests.")
    reason = models.TextField(blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    client_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["object_type", "object_id", "-at"], name="audit_object_recent"),
            models.Index(fields=["action", "-at"], name="audit_action_recent"),
            models.Index(fields=["actor_name", "-at"], name="audit_actor_recent"),
            models.Index(fields=["object_id"], name="audit_object_id"),
            models.Index(fields=["request_id"], name="audit_request_id"),
            models.Index(fields=["customer_id", "-at"], name="audit_customer_recent"),
        ]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} UTC {self.actor} {self.action} {self.object_type} {self.object_id}"

    @property
    def actor(self) -> str:
        return self.actor_name if self.actor_kind == self.ActorKind.USER else f"{self.actor_kind}:{self.actor_name}"
