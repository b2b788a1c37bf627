from django.apps import AppConfig


class IssuerConfig(AppConfig):
    name = "issuer"
    verbose_name = "Issuer"

    def ready(self):
        """The wiring: system checks, the key-set and sync-state receivers (with the readiness probe), the task
        module whose receiver re-mints after a revoke, and the runtime role's grants after every migrate."""
        from django.db.models.signals import post_migrate

        from config.database_roles import after_migrate
        from issuer import checks, tasks  # noqa: F401
        from issuer.keys import signals  # noqa: F401
        from issuer.sync_state import receivers  # noqa: F401

        post_migrate.connect(after_migrate, sender=self, dispatch_uid="issuer.database_roles")
