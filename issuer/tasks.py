"""Celery doors: each task loads nothing and calls one service (the services take the locks, so every task is
idempotent). The receiver at the end re-mints after a revoke, so services never import tasks."""

import logging

from celery import shared_task
from django.dispatch import receiver
from django.utils import timezone

from issuer.fleet.services import fleet_rollup_run, token_records_retain
from issuer.jobs import job_record_pending
from issuer.keys.services import signing_key_policy_run
from issuer.keys.signals import signing_key_revoked
from issuer.tokens import refresh

logger = logging.getLogger(__name__)


@shared_task(name="issuer.tasks.signing_key_policy")
def signing_key_policy() -> list[str]:
    report = signing_key_policy_run()
    if report.actions:
        logger.info("signing key policy acted", extra={"actions": report.actions})
    return report.actions


@shared_task(name="issuer.tasks.token_refresh")
def token_refresh() -> int:
    """Fans the instances out over the workers in id-range chunks."""
    return refresh.token_refresh_run(token_refresh_chunk.delay)


@shared_task(name="issuer.tasks.token_refresh_chunk", acks_late=True)
def token_refresh_chunk(first_id: int, last_id: int) -> int:
    return refresh.token_refresh_chunk(first_id, last_id)


@receiver(signing_key_revoked)
def _refresh_after_revoke(**kwargs):
    """Every token the revoked key signed is re-minted with the active key. When the broker cannot be reached the
    revoke still stands: the re-mint is recorded as pending and the next scheduled refresh run does it."""
    try:
        token_refresh.delay()
    except Exception as error:  # kombu's errors vary by transport; none may undo a revoke
        logger.warning("token re-mint could not be queued; the next refresh run does it", extra={"error": repr(error)})
        job_record_pending("token_refresh", at=timezone.now())


@shared_task(name="issuer.tasks.fleet_rollup")
def fleet_rollup() -> int:
    return fleet_rollup_run()


@shared_task(name="issuer.tasks.token_records_retain")
def token_records_retention() -> dict:
    report = token_records_retain()
    return {"created": report.created, "dropped": report.dropped, "deleted": report.deleted}
