from django.core.checks import Error, register

from unit_primitives.catalog import CatalogError, get_catalog


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
