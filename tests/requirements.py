"""One answer to "may this test skip because a tool or service is missing, or must it fail?".

Where a tool or service is required (`required_here`), a test that needs it and finds it missing fails the run: on
CI (`.ci/run` exports CI=true, as GitLab's and GitHub's runners do) every one of `REQUIRED_ON_CI` is. Elsewhere the
test is skipped, saying why and how to get it.

Only a missing tool or service goes through here. A test that cannot apply to this run by design is skipped as
before, never failed: a SQLite-only behaviour on PostgreSQL, or a wall-clock test in the shifted-clock run."""

import os
import shutil
from pathlib import Path

import pytest

# What each needs, and how to get it where it is missing.
REQUIRED_ON_CI = {
    "postgresql": "needs PostgreSQL: set DATABASE_URL=postgres://...",
    "postgresql-roles": (
        "needs PostgreSQL with two roles: set DATABASE_OWNER_URL (the owner) and DATABASE_URL (the runtime role)"
    ),
    "redis": "needs Redis: set REDIS_URL=redis://...",
    "chromium": "Debian's chromium is not installed (`make test` installs it: apt-get install chromium)",
    "promtool": "promtool is not installed (`make test` installs Debian's prometheus package)",
    "docker-compose": "docker-compose is not installed (.ci/run installs Debian's package)",
    "softhsm2": "Debian's softhsm2 is not installed (`make test` installs it: apt-get install softhsm2)",
}
SOFTHSM2_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


def on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def required_here(name: str) -> bool:
    """Whether `name` must be present in this run: a missing one fails, never skips."""
    if name not in REQUIRED_ON_CI:
        raise ValueError(f"Unknown requirement {name!r}; known: {', '.join(REQUIRED_ON_CI)}")
    return on_ci()


def chromium_path() -> str | None:
    found = shutil.which("chromium") or "/usr/bin/chromium"
    return found if Path(found).exists() else None


def present(name: str) -> bool:
    """Whether `name` is here: the tool on PATH, the service configured for this run."""
    from django.conf import settings
    from django.db import connection

    if name == "postgresql":
        return connection.vendor == "postgresql"
    if name == "postgresql-roles":
        return connection.vendor == "postgresql" and settings.DATABASE_RUNTIME_CREDENTIALS is not None
    if name == "redis":
        return bool(settings.REDIS_URL)
    if name == "chromium":
        return chromium_path() is not None
    if name in ("promtool", "docker-compose"):
        return shutil.which(name) is not None
    if name == "softhsm2":
        return shutil.which("softhsm2-util") is not None and Path(SOFTHSM2_MODULE).exists()
    raise ValueError(f"Unknown requirement {name!r}; known: {', '.join(REQUIRED_ON_CI)}")


def need(name: str) -> None:
    """Returns when `name` is here; otherwise fails the running test where it is required, else skips it."""
    if present(name):
        return
    reason = REQUIRED_ON_CI[name]
    if required_here(name):
        pytest.fail(f"{reason} (required here: CI=true; a missing {name} fails the run, never skips)", pytrace=False)
    raise pytest.skip.Exception(reason, _use_item_location=True)  # reported at the test, not here


def needs(*names: str):
    """A test decorator: `need(name)` for each name before the test runs (a fixture-free `@needs("promtool")`)."""

    def decorate(test):
        return pytest.mark.needs(*names)(test)

    return decorate
