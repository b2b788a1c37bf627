from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self):
        """Celery tasks act as `job:<task name>` (the signal receivers in `context`)."""
        from audit import context  # noqa: F401
