from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from unit_primitives.catalog import CatalogError, load_catalog


class Command(BaseCommand):
    help = "Validate a unit-primitive catalog folder (default: CATALOG_PATH); exits non-zero on any problem."

    def add_arguments(self, parser):
        parser.add_argument("--path", default=None, help="catalog folder to validate")

    def handle(self, *args, path=None, **options):
        folder = path or settings.CATALOG_PATH
        try:
            catalog = load_catalog(folder)
        except CatalogError as error:
            raise CommandError("\n".join(error.problems)) from None
        counts = ", ".join(
            f"{len(getattr(catalog, kind))} {kind}" for kind in catalog.__dataclass_fields__ if kind != "digest"
        )
        self.stdout.write(f"Catalog {folder} is valid: {counts}.")
