from pathlib import Path

import yaml
from django.conf import settings
from django.core.checks import Error, register

from unit_primitives.catalog import Catalog, CatalogError, get_catalog


@register()
def catalog_is_valid(app_configs=None, **kwargs):
    try:
        get_catalog()
    except CatalogError as error:
        return [
            Error(problem, hint="Fix the catalog file or point CATALOG_PATH elsewhere.", id="unit_primitives.E001")
            for problem in error.problems
        ]
    return []


@register()
def credit_prices_are_valid(app_configs=None, **kwargs):
    """The credits part of the catalog (plans' included credits, event prices): names checked against the rest."""
    from unit_primitives.credits import get_credit_catalog

    try:
        get_credit_catalog()
    except CatalogError as error:
        return [
            Error(problem, hint="Fix the credits file under the catalog's credits/ folder.", id="unit_primitives.E003")
            for problem in error.problems
        ]
    return []


def idle_add_ons(catalog: Catalog) -> list[str]:
    """Add-ons that no unit primitive lists: buying one would grant nothing."""
    listed = {name for primitive in catalog.unit_primitives.values() for name in primitive.add_ons}
    return sorted(set(catalog.add_ons) - listed)


def _add_on_files() -> dict[str, Path]:
    """name → file of every add-on in CATALOG_PATH, to point the error at the file to fix."""
    files = {}
    folder = Path(settings.CATALOG_PATH) / "add_ons"
    for path in sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]):
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            files.setdefault(data["name"], path)
    return files


@register()
def every_add_on_grants_something(app_configs=None, **kwargs):
    try:
        catalog = get_catalog()
    except CatalogError:
        return []  # catalog_is_valid reports it
    idle = idle_add_ons(catalog)
    if not idle:
        return []
    files = _add_on_files()
    return [
        Error(
            f"{files.get(name, 'add_ons')}: add-on {name!r} grants nothing: no unit primitive lists it in add_ons",
            hint="List the add-on in the add_ons of the unit primitives it grants, or remove the add-on file.",
            id="unit_primitives.E002",
        )
        for name in idle
    ]
