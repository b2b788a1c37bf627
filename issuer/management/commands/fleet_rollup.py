"""`manage.py fleet_rollup`: one run of the dashboard's rollup job now (beat runs it every 5 minutes)."""

from django.core.management.base import BaseCommand

from issuer.fleet.services import fleet_rollup_run


class Command(BaseCommand):
    help = "Recomputes the fleet counts the dashboard reads (today's, this hour's and yesterday's)."

    def handle(self, *args, **options):
        rows = fleet_rollup_run()
        if options["verbosity"]:
            self.stdout.write(f"{rows} counts written")
