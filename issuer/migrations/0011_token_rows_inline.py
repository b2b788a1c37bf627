"""Token records kept in their heap rows on PostgreSQL (`toast_tuple_target` on every partition; see
`issuer_token_partition_create`, migration 0013): an insert no longer tries to compress the random ciphertext and write
it out of line. Rows already stored stay as they are until rewritten; new partitions get the option when the
retention job creates them."""

from django.db import migrations

from config.postgres import on_postgresql


def _each_partition(option: str) -> str:
    return f"""
DO $$
DECLARE
    partition regclass;
BEGIN
    FOR partition IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'issuer_issuedtoken'::regclass LOOP
        EXECUTE format('ALTER TABLE %s {option}', partition);
    END LOOP;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("issuer", "0010_token_instance_index_covered")]

    operations = [on_postgresql(_each_partition("SET (toast_tuple_target = 8160)"), _each_partition("RESET (toast_tuple_target)"))]
