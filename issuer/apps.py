from django.apps import AppConfig


class IssuerConfig(AppConfig):
    name = "issuer"
    verbose_name = "Issuer"

    def ready(self):
        """The wiring: system checks, the key-set and sync-state receivers (with the readiness probe), and the
        task module whose receiver re-mints after a revoke."""
        from issuer import checks, tasks  # noqa: F401
        from issuer.keys import signals  # noqa: F401
        from issuer.sync_state import receivers  # noqa: F401
