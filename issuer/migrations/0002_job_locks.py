from django.db import migrations

JOBS = ("signing_key_policy", "token_refresh")


def create_locks(apps, schema_editor):
    JobLock = apps.get_model("issuer", "JobLock")
    for name in JOBS:
        JobLock.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [("issuer", "0001_initial")]
    operations = [migrations.RunPython(create_locks, migrations.RunPython.noop)]
