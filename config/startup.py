"""Used by processes that Django's management commands do not start (gunicorn, Celery)."""

import sys

from django.core import checks


def run_startup_checks():
    """Runs the system checks and exits with their messages when any is serious."""
    problems = [message for message in checks.run_checks(databases=["default"]) if message.is_serious()]
    if problems:
        text = "\n".join(f"{problem.id}: {problem.msg} {problem.hint or ''}".strip() for problem in problems)
        sys.stderr.write(f"Refusing to start, the configuration is not valid:\n{text}\n")
        raise SystemExit(3)
