"""The token records' own index on instance_id goes: (instance_id, issued_at DESC) serves every lookup by instance,
and each insert (a sync, the refresh job's COPY) maintained one index more. Only the index is dropped (a brief
lock); Django's AlterField would also drop and re-validate the foreign key across every record, blocking syncs."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("issuer", "0009_validators"),
        ("subscriptions", "0010_roles_see_validators"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="issuedtoken",
                    name="instance",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="issued_tokens",
                        to="subscriptions.instance",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    "DROP INDEX IF EXISTS issuer_issuedtoken_instance_id_fb62b842",
                    "CREATE INDEX issuer_issuedtoken_instance_id_fb62b842 ON issuer_issuedtoken (instance_id)",
                ),
            ],
        ),
    ]
