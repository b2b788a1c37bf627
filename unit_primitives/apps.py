from django.apps import AppConfig


class UnitPrimitivesConfig(AppConfig):
    name = "unit_primitives"
    verbose_name = "Unit primitives"

    def ready(self):
        from unit_primitives import checks  # noqa: F401  (registers the catalog check)
