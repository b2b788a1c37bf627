"""Part-of-a-name searches (host name, customer name) served by trigram indexes on PostgreSQL: Django's
`icontains` there is `UPPER(col::text) LIKE UPPER('%term%')`, so the index is on that very expression. Other
databases keep their plain scan (they are for a laptop, not a fleet)."""

from django.db import migrations

from config.postgres import on_postgresql

TRIGRAM = """
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX IF NOT EXISTS instance_hostname_trgm
    ON subscriptions_instance USING gin ((UPPER(hostname::text)) gin_trgm_ops);
CREATE INDEX IF NOT EXISTS customer_name_trgm
    ON subscriptions_customer USING gin ((UPPER(name::text)) gin_trgm_ops);
"""
DROP = """
DROP INDEX IF EXISTS instance_hostname_trgm;
DROP INDEX IF EXISTS customer_name_trgm;
"""


class Migration(migrations.Migration):
    dependencies = [("subscriptions", "0008_fleet_scale_indexes")]

    operations = [on_postgresql(TRIGRAM, DROP)]
