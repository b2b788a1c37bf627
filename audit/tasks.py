"""The retention purge, daily from beat; it acts as `job:audit.tasks.audit_purge`."""

from celery import shared_task

from audit.services import audit_purge as purge


@shared_task(name="audit.tasks.audit_purge")
def audit_purge() -> int:
    return purge()
