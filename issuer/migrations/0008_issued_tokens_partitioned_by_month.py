"""Token records partitioned by month on PostgreSQL (declarative range partitioning on `issued_at`), so retention
drops a whole month in O(1) instead of deleting rows one by one (`issuer.fleet.services.token_records_retain`).

The existing table is converted in place: a partitioned twin is created with a partition per month from the
oldest record to two months ahead plus a default partition (a safety net for a month the job has not created
yet), the rows are copied, the old table is dropped and the twin takes its name, its primary key, foreign key and
indexes (with Django's names). The primary key becomes (jti, issued_at), as PostgreSQL requires the partition key
in it; a jti is a random UUID, so it stays unique in practice. Other databases keep the plain table."""

from django.db import migrations

CONVERT = """
CREATE TEMP TABLE _token_indexes ON COMMIT DROP AS
    SELECT indexname, indexdef FROM pg_indexes
    WHERE schemaname = current_schema() AND tablename = 'issuer_issuedtoken' AND indexname <> 'issuer_issuedtoken_pkey';
CREATE TEMP TABLE _token_foreign_keys ON COMMIT DROP AS
    SELECT conname, pg_get_constraintdef(oid) AS definition FROM pg_constraint
    WHERE conrelid = 'issuer_issuedtoken'::regclass AND contype = 'f';
CREATE TABLE issuer_issuedtoken_partitioned (LIKE issuer_issuedtoken INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (issued_at);
DO $$
DECLARE
    month date := date_trunc('month', LEAST(COALESCE((SELECT min(issued_at) FROM issuer_issuedtoken), now()), now()) AT TIME ZONE 'UTC');
    last_month date := date_trunc('month', now() AT TIME ZONE 'UTC') + interval '2 months';
BEGIN
    WHILE month <= last_month LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF issuer_issuedtoken_partitioned FOR VALUES FROM (%L) TO (%L)',
            'issuer_issuedtoken_' || to_char(month, '"y"YYYY"m"MM'),
            (month::timestamp AT TIME ZONE 'UTC'), ((month + interval '1 month')::timestamp AT TIME ZONE 'UTC'));
        month := month + interval '1 month';
    END LOOP;
END $$;
CREATE TABLE issuer_issuedtoken_default PARTITION OF issuer_issuedtoken_partitioned DEFAULT;
INSERT INTO issuer_issuedtoken_partitioned SELECT * FROM issuer_issuedtoken;
DROP TABLE issuer_issuedtoken;
ALTER TABLE issuer_issuedtoken_partitioned RENAME TO issuer_issuedtoken;
ALTER TABLE issuer_issuedtoken ADD CONSTRAINT issuer_issuedtoken_pkey PRIMARY KEY (jti, issued_at);
DO $$
DECLARE
    row record;
BEGIN
    FOR row IN SELECT * FROM _token_foreign_keys LOOP
        EXECUTE format('ALTER TABLE issuer_issuedtoken ADD CONSTRAINT %I %s', row.conname, row.definition);
    END LOOP;
    FOR row IN SELECT * FROM _token_indexes LOOP
        EXECUTE row.indexdef;
    END LOOP;
END $$;
"""


def convert(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CONVERT, params=None)


class Migration(migrations.Migration):
    dependencies = [("issuer", "0007_fleet_counts"), ("subscriptions", "0009_trigram_search")]

    # One way: going back would mean copying every record into a plain table again; restore a backup instead.
    operations = [migrations.RunPython(convert, migrations.RunPython.noop)]
