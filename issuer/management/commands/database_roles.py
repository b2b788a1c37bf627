"""`manage.py database_roles --role NAME`: create the runtime role if missing and grant it exactly its privileges
(idempotent; `migrate` does the same when DATABASE_RUNTIME_ROLE is set). Run it connected as the owner."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from config.database_roles import database_roles_grant


class Command(BaseCommand):
    help = "Create the runtime database role if missing and grant it only what web, worker and beat need."

    def add_arguments(self, parser):
        parser.add_argument("--role", default=settings.DATABASE_RUNTIME_ROLE, help="default: DATABASE_RUNTIME_ROLE")

    def handle(self, *args, role, **options):
        if connection.vendor != "postgresql":
            raise CommandError("Database roles exist on PostgreSQL only; this database is " + connection.vendor + ".")
        if not role:
            raise CommandError("Name the runtime role: --role NAME, or DATABASE_RUNTIME_ROLE.")
        for line in database_roles_grant(role, password=settings.DATABASE_RUNTIME_PASSWORD):
            self.stdout.write(line)
        self.stdout.write(f"The runtime role {role} holds its privileges.")
