from django.db import migrations


def sync_roles(apps, schema_editor):
    from subscriptions.roles import roles_sync

    roles_sync(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("subscriptions", "0009_trigram_search"),
        ("issuer", "0009_validators"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
