"""Job locks and job bookkeeping: a periodic job takes its row lock, so two workers or two beats cannot double-act,
and records its last success (seen in /metrics)."""

import datetime as dt

from issuer.models import JobLock


def job_lock(name: str) -> JobLock:
    """The job's row, locked until the surrounding transaction ends (created on first use)."""
    JobLock.objects.get_or_create(name=name)
    return JobLock.objects.select_for_update().get(name=name)


def job_record_success(name: str, *, at: dt.datetime) -> None:
    JobLock.objects.update_or_create(name=name, defaults={"last_success_at": at})
