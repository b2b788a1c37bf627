"""Machine doors run the lean stack, pages the full one (config/machine_doors.py)."""

import pytest
from axes.middleware import AxesMiddleware
from csp.middleware import CSPMiddleware
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.csrf import CsrfViewMiddleware
from django.test import Client

from audit.context import AuditRequestMiddleware
from config.logging import RequestIdMiddleware
from config.machine_doors import MACHINE_PATHS

# What each people-only middleware does on every request it runs for.
PEOPLE_ONLY = {
    "session": (SessionMiddleware, "process_request"),
    "csrf": (CsrfViewMiddleware, "process_request"),
    "authentication": (AuthenticationMiddleware, "process_request"),
    "messages": (MessageMiddleware, "process_request"),
    "x-frame-options": (XFrameOptionsMiddleware, "process_response"),
    "axes": (AxesMiddleware, "__call__"),
    "csp": (CSPMiddleware, "process_request"),
}
# What every door keeps.
KEPT = {"request id": (RequestIdMiddleware, "__call__"), "audit frame": (AuditRequestMiddleware, "__call__")}


@pytest.fixture
def ran(monkeypatch):
    """The names of the middleware that ran for the requests made through the fixture's client."""
    names = []

    def spy(name, original):
        def recorded(*args, **kwargs):
            names.append(name)
            return original(*args, **kwargs)

        return recorded

    for name, (middleware, method) in {**PEOPLE_ONLY, **KEPT}.items():
        monkeypatch.setattr(middleware, method, spy(name, getattr(middleware, method)))
    return names


@pytest.mark.django_db
def test_a_page_runs_the_full_stack(ran):
    response = Client().get("/admin/login/")

    assert response.status_code == 200
    assert set(ran) == {*PEOPLE_ONLY, *KEPT}
    assert response["X-Frame-Options"] == "DENY"
    assert "Content-Security-Policy" in response


@pytest.mark.django_db
@pytest.mark.parametrize("path", sorted(MACHINE_PATHS))
@pytest.mark.parametrize("method", ["get", "post"])
def test_a_machine_door_runs_none_of_the_people_only_middleware(ran, path, method):
    client = Client()
    response = client.get(path) if method == "get" else client.post(path, b"{}", content_type="application/json")

    assert response.status_code != 500, response.content[:300]  # /readyz may say 503 (no shared cache here)
    assert set(ran) == set(KEPT)
    assert response["X-Content-Type-Options"] == "nosniff"  # the security headers stay
    assert response["X-Request-Id"]
    assert "Set-Cookie" not in response and "Cookie" not in response.get("Vary", "")
    assert "X-Frame-Options" not in response and "Content-Security-Policy" not in response


def test_a_people_only_middleware_missing_from_the_settings_stops_the_start(settings):
    from config.checks import people_middleware

    assert people_middleware() == []
    settings.MIDDLEWARE = [path for path in settings.MIDDLEWARE if "Csrf" not in path]
    problems = people_middleware()
    assert [problem.id for problem in problems] == ["config.E009"]
    assert "CsrfViewMiddleware" in problems[0].msg
