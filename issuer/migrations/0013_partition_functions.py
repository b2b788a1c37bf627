"""The token records' monthly partitions are created, attached, detached and dropped through SECURITY DEFINER
functions owned by the role that migrates: the daily retention job runs as the runtime role, which may not run
DDL (its tables are named in the `public` schema, where the migrations put them: the functions' search path
starts with pg_catalog). Each function checks what it is asked (a month's first day; only a partition of `issuer_issuedtoken` by its
own naming), so calling one can do nothing the job itself would not. Other databases keep the plain table."""

from django.db import migrations

from config.postgres import on_postgresql

FUNCTIONS = """
CREATE OR REPLACE FUNCTION issuer_token_partition_create(month date) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    name text := 'issuer_issuedtoken_y' || to_char(month, 'YYYY"m"MM');
    starts timestamptz := (month::timestamp AT TIME ZONE 'UTC');
    ends timestamptz := ((month + interval '1 month')::timestamp AT TIME ZONE 'UTC');
BEGIN
    IF month <> date_trunc('month', month)::date THEN
        RAISE EXCEPTION 'a partition starts on the first day of a month, not %', month;
    END IF;
    IF to_regclass('public.' || name) IS NOT NULL THEN
        RETURN false;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM issuer_issuedtoken_default WHERE issued_at >= starts AND issued_at < ends) THEN
        EXECUTE format('CREATE TABLE public.%I PARTITION OF issuer_issuedtoken FOR VALUES FROM (%L) TO (%L) '
                       'WITH (toast_tuple_target = 8160)', name, starts, ends);
        RETURN true;
    END IF;
    -- rows that fell into the default partition meanwhile move into their month first
    EXECUTE format('CREATE TABLE public.%I (LIKE issuer_issuedtoken INCLUDING DEFAULTS INCLUDING CONSTRAINTS) '
                   'WITH (toast_tuple_target = 8160)', name);
    EXECUTE format('INSERT INTO public.%I SELECT * FROM issuer_issuedtoken_default WHERE issued_at >= %L AND issued_at < %L',
                   name, starts, ends);
    DELETE FROM issuer_issuedtoken_default WHERE issued_at >= starts AND issued_at < ends;
    EXECUTE format('ALTER TABLE issuer_issuedtoken ATTACH PARTITION public.%I FOR VALUES FROM (%L) TO (%L)', name, starts, ends);
    RETURN true;
END;
$$;
REVOKE ALL ON FUNCTION issuer_token_partition_create(date) FROM PUBLIC;

CREATE OR REPLACE FUNCTION issuer_token_partition_drop(name text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF name !~ '^issuer_issuedtoken_y[0-9]{4}m[0-9]{2}$' OR NOT EXISTS (
        SELECT 1 FROM pg_inherits WHERE inhparent = 'issuer_issuedtoken'::regclass AND inhrelid = to_regclass('public.' || name)
    ) THEN
        RAISE EXCEPTION '% is not a monthly partition of the token records', name;
    END IF;
    EXECUTE format('ALTER TABLE issuer_issuedtoken DETACH PARTITION public.%I', name);
    EXECUTE format('DROP TABLE public.%I', name);
END;
$$;
REVOKE ALL ON FUNCTION issuer_token_partition_drop(text) FROM PUBLIC;
"""
DROP = """
DROP FUNCTION IF EXISTS issuer_token_partition_create(date);
DROP FUNCTION IF EXISTS issuer_token_partition_drop(text);
"""


class Migration(migrations.Migration):
    dependencies = [("issuer", "0012_validators_confirmed")]

    operations = [on_postgresql(FUNCTIONS, DROP)]
