from django.db import migrations


def sync_roles(apps, schema_editor):
    from subscriptions.roles import roles_sync

    roles_sync(apps)


class Migration(migrations.Migration):
    """Viewers read the credits ledger; billing grants credits and allows or stops overage."""

    dependencies = [("credits", "0001_initial"), ("subscriptions", "0012_seat_report_received_index")]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
