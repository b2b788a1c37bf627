from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self):
        """Celery tasks act as `job:<task name>` (the signal receivers in `context`); users, roles and API tokens
        changed through Django's and knox's own pages are recorded by `receivers`."""
        from audit import context, receivers  # noqa: F401
