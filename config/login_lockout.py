"""Failed back-office logins, locked out in two tiers (django-axes, AXES_HANDLER):

- the (username, client address) pair after AXES_FAILURE_LIMIT failures (5): one guesser is stopped at once, and
  nobody else is locked out by it;
- the username alone, from any address, after AXES_USERNAME_FAILURE_LIMIT failures (20): a guesser spreading over
  many addresses (80 passwords from 20 addresses) is stopped too. The price: that many failures lock the real user
  out as well, for AXES_COOLOFF_TIME; `manage.py axes_reset_username <name>` lifts it at once.

axes compares one number with one limit, the largest count of its lockout parameters; this handler counts each tier
against its own limit and reports the username tier as "at the limit" once it has reached its own."""

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username, get_cool_off, get_failure_limit
from django.conf import settings
from django.db.models import Sum


def _failures(attempts) -> int:
    return attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0


class TieredLockoutHandler(AxesDatabaseHandler):
    """AXES_LOCKOUT_PARAMETERS is [["username", "ip_address"], "username"]: the pair tier first, the username second."""

    def get_failures(self, request, credentials=None) -> int:
        limit = get_failure_limit(request, credentials)
        pair, *username = (_failures(attempts) for attempts in self.get_user_attempts(request, credentials))
        username_locked = bool(username) and username[0] >= settings.AXES_USERNAME_FAILURE_LIMIT
        return max(pair, limit if username_locked else 0)


def lockout_response(request, original_response=None, credentials=None):
    """The page a locked-out login gets (AXES_LOCKOUT_CALLABLE): styled like the login page, saying how long the
    lock holds (counted from the last failed attempt, so every further failure restarts it) and how an administrator
    lifts it at once. Status 429, as axes answers by default."""
    from django.contrib import admin
    from django.template.response import TemplateResponse

    cool_off = get_cool_off(request)
    minutes = round(cool_off.total_seconds() / 60) if cool_off else None
    context = {
        **admin.site.each_context(request),
        "title": "Signing in is locked",
        "username": get_client_username(request, credentials) or "",
        "cool_off_minutes": minutes,
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "username_failure_limit": settings.AXES_USERNAME_FAILURE_LIMIT,
    }
    return TemplateResponse(request, "admin/locked_out.html", context, status=settings.AXES_HTTP_RESPONSE_CODE).render()
