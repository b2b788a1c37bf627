from django.db import migrations


def create_roles(apps, schema_editor):
    from subscriptions.roles import roles_sync

    roles_sync(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("subscriptions", "0005_role_permissions"),
        ("issuer", "0005_role_permissions"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
