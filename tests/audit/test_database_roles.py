"""Two database roles (issue 23, part 2): whoever holds the runtime role's credentials cannot rewrite the audit
trail, while the purge and the partition job, which go through the owner's functions, still work.

CI runs these as the runtime role (DATABASE_OWNER_URL set); elsewhere they are skipped, saying why."""

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.test import override_settings
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_purge, audit_record
from issuer.fleet.services import token_records_retain
from tests.requirements import needs, required_here

ROOT = Path(__file__).resolve().parents[2]
as_runtime_role = needs("postgresql-roles")  # skipped elsewhere, saying why; on CI (CI=true) never skipped
pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _event(days_ago: float) -> AuditEvent:
    with transaction.atomic():
        return audit_record(
            "customer.create", object_type="customer", object_id="1", at=timezone.now() - dt.timedelta(days=days_ago)
        )


def _refused(statement: str, params=None) -> str:
    with pytest.raises(DatabaseError) as refusal, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, params)
    return str(refusal.value)


def test_ci_runs_the_postgresql_tests_as_the_runtime_role():
    if required_here("postgresql-roles"):
        assert connection.vendor == "postgresql", "CI must set DATABASE_URL (PostgreSQL)"
        assert settings.DATABASE_RUNTIME_CREDENTIALS is not None, "CI must set DATABASE_OWNER_URL"
    if settings.DATABASE_RUNTIME_CREDENTIALS is not None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
            user, superuser = cursor.fetchone()
        assert user == settings.DATABASE_RUNTIME_CREDENTIALS["USER"] and not superuser


@as_runtime_role
def test_the_runtime_role_cannot_rewrite_history():
    event = _event(days_ago=400)
    assert "permission denied" in _refused("UPDATE audit_auditevent SET action = 'x' WHERE id = %s", [event.pk])
    assert "permission denied" in _refused("DELETE FROM audit_auditevent WHERE id = %s", [event.pk])
    assert "permission denied" in _refused("TRUNCATE audit_auditevent")
    assert "must be owner" in _refused("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
    assert "permission denied" in _refused(
        "SELECT set_config('issuer.audit_purge_before', '9999-01-01', true); DELETE FROM audit_auditevent"
    )
    assert "permission denied" in _refused("SET LOCAL issuer.audit_allow_truncate = 'on'; TRUNCATE audit_auditevent")
    assert AuditEvent.objects.filter(pk=event.pk, action="customer.create").exists()


@as_runtime_role
@pytest.mark.wall_clock  # the floor is the database's clock
def test_the_purge_function_deletes_nothing_younger_than_its_floor_whatever_it_is_asked():
    old, recent = _event(days_ago=45), _event(days_ago=10)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT audit_events_purge('9999-01-01')")  # "purge everything"
        assert cursor.fetchone()[0] == 1
    assert not AuditEvent.objects.filter(pk=old.pk).exists() and AuditEvent.objects.filter(pk=recent.pk).exists()


@as_runtime_role
@pytest.mark.wall_clock  # the floor is the database's clock
def test_the_purge_and_the_partition_job_still_work_as_the_runtime_role():
    old, kept = _event(days_ago=60), _event(days_ago=35)
    with override_settings(ISSUER_AUDIT_RETENTION_DAYS=50):
        assert audit_purge() == 1
    assert not AuditEvent.objects.filter(pk=old.pk).exists() and AuditEvent.objects.filter(pk=kept.pk).exists()
    far = timezone.now() + dt.timedelta(days=200)
    assert token_records_retain(at=far).created  # months ahead: made by the owner's function, no DDL of its own
    assert "not a monthly partition" in _refused("SELECT issuer_token_partition_drop('audit_auditevent')")
    assert "permission denied" in _refused("CREATE TABLE issuer_issuedtoken_y2099m01 (id int)")


def _superuser_dsn(database: str) -> str | None:
    dsn = f"postgresql://postgres@{connection.settings_dict['HOST'] or '127.0.0.1'}:5432/{database}"
    try:
        with psycopg.connect(dsn, connect_timeout=3) as probe:
            probe.execute("SELECT 1")
    except psycopg.OperationalError:
        return None
    return dsn


@as_runtime_role
def test_a_database_created_the_old_way_upgrades_with_the_role_command(tmp_path):
    """One superuser made and migrated the database (the old compose file); `database_roles` then gives a runtime
    role exactly its privileges, and that role cannot rewrite history."""
    admin = _superuser_dsn("postgres")
    if admin is None:
        message = "needs the postgres superuser on 127.0.0.1 (trust) to make a database the old way"
        if required_here("postgresql-roles"):
            pytest.fail(f"{message} (.ci/run uses it; required here: CI=true)", pytrace=False)
        pytest.skip(message)
    database, role = "issuer_old_way_upgrade", "issuer_upgrade_runtime"
    with psycopg.connect(admin, autocommit=True) as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {database}")
        cursor.execute(f"CREATE DATABASE {database}")
        cursor.execute(f"DROP ROLE IF EXISTS {role}")
    url = _superuser_dsn(database).replace("postgresql://", "postgres://")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")},
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
    }
    manage = [sys.executable, "manage.py"]
    for command in (["migrate", "--noinput"], ["database_roles", "--role", role]):
        done = subprocess.run(
            [*manage, *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert done.returncode == 0, done.stderr[-2000:]
    assert f"The runtime role {role} holds its privileges." in done.stdout
    runtime = url.replace("postgres://postgres@", f"postgres://{role}@").replace("postgres://", "postgresql://")
    with psycopg.connect(runtime, autocommit=True) as cursor:
        cursor.execute(
            "INSERT INTO subscriptions_customer (name, contact_email, created_at) VALUES ('Upgrade', '', now())"
        )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            cursor.execute("DELETE FROM audit_auditevent")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            cursor.execute("TRUNCATE audit_auditevent")
        assert cursor.execute("SELECT count(*) FROM audit_auditevent").fetchone()[0] >= 0
    with psycopg.connect(admin, autocommit=True) as cursor:
        cursor.execute(f"DROP DATABASE {database}")
        cursor.execute(f"DROP OWNED BY {role}")
        cursor.execute(f"DROP ROLE {role}")
