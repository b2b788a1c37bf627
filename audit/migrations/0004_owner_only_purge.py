"""The append-only trigger no longer listens to settings a connection can change (`set_config`, `SET LOCAL`): the
retention purge runs through `audit_events_purge`, a SECURITY DEFINER function owned by the role that migrates,
which deletes only events older than both the cutoff it is given and a constant floor of 30 days before the
database's own clock; the trigger lets a DELETE through only from that role and only for such events, and a
TRUNCATE only from that role (the test suite's flush). The runtime role holds neither DELETE nor TRUNCATE on the
table (`issuer.roles`), so the function is its only way to remove an event."""

from django.db import migrations

from config.postgres import on_postgresql

OWNER_ONLY = """
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
DECLARE
    owner name := (SELECT relowner::regrole::name FROM pg_class WHERE oid = TG_RELID);
BEGIN
    IF current_user = owner THEN
        IF TG_OP = 'TRUNCATE' THEN
            RETURN NULL;
        ELSIF TG_OP = 'DELETE' AND OLD.at < now() - interval '30 days' THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit events are append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE OR REPLACE FUNCTION audit_events_purge(cutoff timestamptz) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    purged bigint;
BEGIN
    DELETE FROM audit_auditevent WHERE at < LEAST(cutoff, now() - interval '30 days');
    GET DIAGNOSTICS purged = ROW_COUNT;
    RETURN purged;
END;
$$;
REVOKE ALL ON FUNCTION audit_events_purge(timestamptz) FROM PUBLIC;
"""
PREVIOUS = """
DROP FUNCTION IF EXISTS audit_events_purge(timestamptz);
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        IF current_setting('issuer.audit_allow_truncate', true) = 'on' THEN
            RETURN NULL;
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        IF OLD.at < NULLIF(current_setting('issuer.audit_purge_before', true), '')::timestamptz THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit events are append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_fleet_scale_indexes")]

    operations = [on_postgresql(OWNER_ONLY, PREVIOUS)]
