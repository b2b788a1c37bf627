"""Two database roles (PostgreSQL): the owner, which migrates and owns every table and function, and the runtime
role that web, worker and beat connect as, holding only what they need.

The runtime role may read and write the application's tables, except the audit trail, where it may only SELECT
and INSERT: it cannot UPDATE, DELETE or TRUNCATE an event, disable the trigger (only an owner may) or move the
purge's cutoff (the purge is the owner's function `audit_events_purge`, with a floor of its own). The token
records' partitions are made and dropped by the owner's functions too, so the runtime role runs no DDL.

`database_roles_grant` is idempotent and runs after every `migrate` when DATABASE_RUNTIME_ROLE is set (the
migrate step connects as the owner), so a table a new migration adds is granted at once; ALTER DEFAULT
PRIVILEGES covers the tables the owner's functions create between migrations (a month's partition)."""

from django.conf import settings
from django.db import connection
from psycopg import sql

AUDIT_TABLE = "audit_auditevent"
DEFINER_FUNCTIONS = (
    "audit_events_purge(timestamptz)",
    "issuer_token_partition_create(date)",
    "issuer_token_partition_drop(text)",
)


def database_roles_grant(runtime_role: str, *, password: str = "") -> list[str]:
    """Creates the runtime role when missing (with `password`, if given, set every time) and grants it exactly its
    privileges; returns the statements it ran, for the command's output."""
    role = sql.Identifier(runtime_role)
    statements = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [runtime_role])
        if cursor.fetchone() is None:
            statements.append(
                sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT").format(role)
            )
        if password:
            statements.append(sql.SQL("ALTER ROLE {} PASSWORD {}").format(role, sql.Literal(password)))
        cursor.execute("SELECT current_schema(), current_user")
        schema_name, owner_name = cursor.fetchone()
        schema, owner = sql.Identifier(schema_name), sql.Identifier(owner_name)
        statements += [
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(connection.settings_dict["NAME"]), role
            ),
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, role),
            sql.SQL("REVOKE CREATE ON SCHEMA {} FROM {}").format(schema, role),
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} TO {}").format(schema, role),
            sql.SQL("REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA {} FROM {}").format(schema, role),
            sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(schema, role),
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {}"
            ).format(owner, schema, role),
            sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT USAGE, SELECT ON SEQUENCES TO {}").format(
                owner, schema, role
            ),
            sql.SQL("REVOKE UPDATE, DELETE ON {} FROM {}").format(sql.Identifier(AUDIT_TABLE), role),
        ]
        statements += [
            sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(sql.SQL(function), role)
            for function in DEFINER_FUNCTIONS
            if _function_exists(cursor, function)
        ]
        for statement in statements:
            cursor.execute(statement)
        shown = [statement.as_string(cursor.connection) for statement in statements]
    return [line.split(" PASSWORD ")[0] + " PASSWORD '…'" if " PASSWORD " in line else line for line in shown]


def _function_exists(cursor, signature: str) -> bool:
    cursor.execute("SELECT to_regprocedure(%s) IS NOT NULL", [signature])
    return cursor.fetchone()[0]


def runtime_role_configured() -> str:
    return settings.DATABASE_RUNTIME_ROLE if connection.vendor == "postgresql" else ""


def after_migrate(sender, **kwargs) -> None:
    """`post_migrate` receiver: the grants follow every migration (idempotent; nothing without a runtime role)."""
    role = runtime_role_configured()
    if role and kwargs.get("using", "default") == "default":
        database_roles_grant(role, password=settings.DATABASE_RUNTIME_PASSWORD)
