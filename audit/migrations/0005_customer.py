
"""Each event names the customer its object belonged to (id and name at the time), so the trail answers "what
happened to this customer". Events recorded before carry none. On PostgreSQL, trigram indexes serve the
case-insensitive search by object and customer name (Django's `icontains` is `UPPER(col::text) LIKE ...`)."""

from django.db import migrations, models

from config.postgres import on_postgresql

TRIGRAM = """
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX IF NOT EXISTS audit_object_repr_trgm
    ON audit_auditevent USING gin ((UPPER(object_repr::text)) gin_trgm_ops);
CREATE INDEX IF NOT EXISTS audit_customer_name_trgm
    ON audit_auditevent USING gin ((UPPER(customer_name::text)) gin_trgm_ops);
"""
DROP = """
DROP INDEX IF EXISTS audit_object_repr_trgm;
DROP INDEX IF EXISTS audit_customer_name_trgm;
"""


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0004_owner_only_purge'),
    ]

    operations = [
        migrations.AddField(
            model_name='auditevent',
            name='customer_id',
            field=models.BigIntegerField(blank=True, help_text='The customer the object belonged to at the time (kept when it is deleted).', null=True),
        ),
        migrations.AddField(
            model_name='auditevent',
            name='customer_name',
            field=models.CharField(blank=True, db_default='', default='', help_text="That customer's name at the time.", max_length=200),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['customer_id', '-at'], name='audit_customer_recent'),
        ),
        on_postgresql(TRIGRAM, DROP),
    ]
