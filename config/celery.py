"""The Celery app: JSON only, settings under CELERY_*, and the system checks run before a worker or beat starts."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("issuer")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
@signals.beat_init.connect
def _refuse_to_start_misconfigured(**kwargs):
    from config.startup import run_startup_checks

    run_startup_checks()


@signals.worker_process_init.connect
def _open_signing_token(**kwargs):
    """Each pool process opens its own PKCS#11 session after the fork (issuer/keys/hsm.py); the main process never
    does."""
    from issuer.keys.hsm import hsm_open_for_process

    hsm_open_for_process()
