"""The append-only trigger, tightened: a purge may delete only events older than the cutoff its own transaction
names (`issuer.audit_purge_before`), and TRUNCATE is refused too, except on connections that say
`issuer.audit_allow_truncate=on` (the test suite's, whose transactional tests are flushed with TRUNCATE)."""

from django.db import migrations

from config.postgres import on_postgresql

APPEND_ONLY = """
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
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only();
"""
PREVIOUS = """
DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_auditevent;
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('issuer.audit_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit events are append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [on_postgresql(APPEND_ONLY, PREVIOUS)]
