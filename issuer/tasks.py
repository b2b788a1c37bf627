"""Celery doors onto the issuer's services. Each is idempotent; the services take the locks."""

import logging

from celery import shared_task
from django.utils import timezone

from issuer import services

logger = logging.getLogger(__name__)


@shared_task(name="issuer.tasks.signing_key_policy")
def signing_key_policy() -> list[str]:
    report = services.signing_key_policy_run()
    if report.actions:
        logger.info("signing key policy acted", extra={"actions": report.actions})
    return report.actions


@shared_task(name="issuer.tasks.token_refresh")
def token_refresh() -> int:
    """Fans the instances out over the workers in id-range chunks."""
    started = timezone.now()
    plan = services.token_refresh_plan()
    for first_id, last_id in plan:
        token_refresh_chunk.delay(first_id, last_id)
    services.token_ciphertexts_drop_expired(at=started)
    services.job_record_success("token_refresh", at=started)
    return len(plan)


@shared_task(name="issuer.tasks.token_refresh_chunk", acks_late=True)
def token_refresh_chunk(first_id: int, last_id: int) -> int:
    return services.token_refresh_chunk(first_id, last_id)
