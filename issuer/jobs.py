"""Job locks and job bookkeeping: a periodic job takes its row lock, so two workers or two beats cannot double-act,
and records its last success (seen in /metrics)."""

import datetime as dt

from issuer.models import JobLock


def job_lock(name: str) -> JobLock:
    """The job's row, locked until the surrounding transaction ends (created on first use)."""
    JobLock.objects.get_or_create(name=name)
    return JobLock.objects.select_for_update().get(name=name)


def job_record_success(name: str, *, at: dt.datetime) -> None:
    """The job ran: its last success, and any request made before this run started is fulfilled."""
    JobLock.objects.update_or_create(name=name, defaults={"last_success_at": at})
    JobLock.objects.filter(name=name, pending_since__lte=at).update(pending_since=None)


def job_record_pending(name: str, *, at: dt.datetime) -> None:
    """A run was asked for but could not be queued; the next scheduled run does the work."""
    JobLock.objects.update_or_create(name=name, defaults={"pending_since": at})


def job_pending_since(name: str) -> dt.datetime | None:
    return JobLock.objects.filter(name=name).values_list("pending_since", flat=True).first()
