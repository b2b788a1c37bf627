"""Celery door of the credits ledger: one task a day writes down the month's included credits."""

from celery import shared_task
from django.utils import timezone

from credits.selectors import month_of
from credits.services import credit_included_grants_fix_month


@shared_task(name="credits.tasks.credit_included_grants_fix")
def credit_included_grants_fix() -> int:
    return credit_included_grants_fix_month(month_of(timezone.now()))
