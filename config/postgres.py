"""Migration steps that exist only on PostgreSQL (triggers, extensions, expression indexes): other databases (the
laptop's SQLite) skip them."""

from django.db import migrations


def on_postgresql(sql: str, reverse_sql: str) -> migrations.RunPython:
    def run(statements):
        def execute(apps, schema_editor):
            if schema_editor.connection.vendor == "postgresql":
                schema_editor.execute(statements, params=None)  # params=None: '%' in plpgsql is not a placeholder

        return execute

    return migrations.RunPython(run(sql), run(reverse_sql))
