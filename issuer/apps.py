from django.apps import AppConfig


class IssuerConfig(AppConfig):
    name = "issuer"
    verbose_name = "Issuer"

    def ready(self):
        from issuer import checks, signals  # noqa: F401  (system checks, readiness probe, cache invalidation)
