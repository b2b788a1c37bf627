from django.db import migrations


def sync_roles(apps, schema_editor):
    from subscriptions.roles import roles_sync

    roles_sync(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("subscriptions", "0006_roles"),
        ("audit", "0001_initial"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
