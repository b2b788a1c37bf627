from django.db import migrations, models

from config.postgres import on_postgresql

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('issuer.audit_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit events are append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS audit_event_append_only ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_event_append_only();
"""


class Migration(migrations.Migration):
    initial = True
    dependencies = []

    operations = [
        migrations.CreateModel(
            name="AuditEvent",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("at", models.DateTimeField(db_index=True)),
                (
                    "actor_kind",
                    models.CharField(
                        choices=[
                            ("user", "User"),
                            ("cli", "Cli"),
                            ("job", "Job"),
                            ("instance", "Instance"),
                            ("anonymous", "Anonymous"),
                        ],
                        max_length=16,
                    ),
                ),
                (
                    "actor_name",
                    models.CharField(
                        help_text="Username at the time, OS user, task name or instance.", max_length=150
                    ),
                ),
                (
                    "actor_user_id",
                    models.BigIntegerField(blank=True, help_text="Kept when the user is deleted.", null=True),
                ),
                ("action", models.CharField(max_length=64)),
                ("object_type", models.CharField(max_length=64)),
                ("object_id", models.CharField(blank=True, max_length=64)),
                ("object_repr", models.CharField(blank=True, max_length=200)),
                (
                    "changes",
                    models.JSONField(
                        blank=True, default=dict, help_text="{field: [before, after]}; secrets as digests."
                    ),
                ),
                ("reason", models.TextField(blank=True)),
                ("request_id", models.CharField(blank=True, max_length=64)),
                ("client_address", models.GenericIPAddressField(blank=True, null=True)),
            ],
            options={
                "ordering": ["-at", "-id"],
                "indexes": [
                    models.Index(fields=["object_type", "object_id", "-at"], name="audit_object_recent"),
                    models.Index(fields=["action", "-at"], name="audit_action_recent"),
                    models.Index(fields=["actor_name", "-at"], name="audit_actor_recent"),
                ],
            },
        ),
        on_postgresql(APPEND_ONLY, DROP),
    ]
