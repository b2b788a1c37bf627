"""An instance's last sync moves to a narrow row of its own (`InstanceLastSync`, issue 29): the instances' values
are copied over (and back, when unapplied) before the column and its index go."""

import django.db.models.deletion
from django.db import migrations, models

COPY = (
    "INSERT INTO subscriptions_instancelastsync (instance_id, at) "
    "SELECT id, last_sync_at FROM subscriptions_instance WHERE last_sync_at IS NOT NULL"
)
COPY_BACK = (
    "UPDATE subscriptions_instance SET last_sync_at = "
    "(SELECT at FROM subscriptions_instancelastsync WHERE instance_id = subscriptions_instance.id)"
)


class Migration(migrations.Migration):
    dependencies = [("subscriptions", "0013_addonpurchase_suspended")]

    operations = [
        migrations.CreateModel(
            name="InstanceLastSync",
            fields=[
                (
                    "instance",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="last_sync",
                        serialize=False,
                        to="subscriptions.instance",
                    ),
                ),
                ("at", models.DateTimeField(db_index=True)),
            ],
        ),
        migrations.RunSQL(COPY, reverse_sql=COPY_BACK),
        migrations.RemoveIndex(model_name="instance", name="subscriptio_last_sy_8b5beb_idx"),
        migrations.RemoveField(model_name="instance", name="last_sync_at"),
    ]
