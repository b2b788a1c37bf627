"""Issue 22's low findings on what the issuer shows of itself: access log lines, headers, /readyz, the API schema,
where a login lands."""

import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from config.logging import redact
from subscriptions.models import new_activation_code
from tests.helpers import free_port, gunicorn_as_production

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "shape",
    [
        lambda code: code,
        lambda code: code.lower(),
        lambda code: "-".join(code[i : i + 4] for i in range(0, 24, 4)),
    ],
)
def test_activation_codes_are_redacted_as_support_types_them(shape):
    code = shape(new_activation_code())
    cleaned = redact(f'GET /admin/subscriptions/subscription/?q={code}&o=1 HTTP/1.1"')
    assert code not in cleaned and "[REDACTED CODE]" in cleaned
    assert cleaned.endswith('&o=1 HTTP/1.1"')


def test_code_redaction_leaves_instance_ids_and_request_ids_alone():
    text = "instance 2345abcd-ef23-4567-89ab-cdef23456789 request 9f8e7d6c5b4a39281706f5e4d3c2b1a0 synced"
    assert redact(text) == text


@pytest.fixture(scope="module")
def gunicorn_server(tmp_path_factory):
    """The real gunicorn, with the project's gunicorn.conf.py, on a free port; yields (base url, output file)."""
    from cryptography.fernet import Fernet

    output = tmp_path_factory.mktemp("gunicorn") / "output.log"
    port = free_port()
    unrelated = ("DJANGO_SETTINGS_MODULE", "REDIS_URL", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")
    env = {k: v for k, v in os.environ.items() if k not in unrelated}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        SECRET_KEY="gunicorn-test-secret-key-0123456789-abcdefghijklmnop",
        KEY_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        LICENSE_KEY_PEPPER="gunicorn-test-pepper-0123456789-abcdefghijklmnop",
        DATABASE_URL=f"sqlite:///{output.parent / 'db.sqlite3'}",
        WEB_CONCURRENCY="1",
    )
    with output.open("w") as sink:
        server = subprocess.Popen(
            gunicorn_as_production(port),
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(150):
                try:
                    urllib.request.urlopen(f"{base}/healthz", timeout=2).read()
                    break
                except OSError:
                    time.sleep(0.1)
            yield base, output
        finally:
            server.terminate()
            server.wait(timeout=30)


def test_gunicorn_access_log_carries_no_query_string(gunicorn_server):
    base, output = gunicorn_server
    code = new_activation_code()
    urllib.request.urlopen(f"{base}/healthz?q={code}&licenseKey=cdl_SecretLicenseKey0123456789", timeout=5).read()
    time.sleep(0.3)
    log = output.read_text()
    assert "/healthz" in log, log
    assert code not in log and "cdl_SecretLicenseKey" not in log


def test_gunicorn_sends_no_server_header(gunicorn_server):
    base, _ = gunicorn_server
    with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:
        assert response.headers.get("Server") is None


@pytest.mark.django_db
def test_readyz_tells_the_public_its_status_only(client, signing_key, settings):
    settings.ISSUER_METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    settings.ISSUER_METRICS_TOKEN = "scrape-me-please"
    public = client.get("/readyz", REMOTE_ADDR="203.0.113.9")
    assert public.status_code == 200 and public.json() == {"status": "ok"}
    monitoring = client.get("/readyz", REMOTE_ADDR="10.1.2.3").json()
    assert set(monitoring["checks"]) == {"database", "cache", "signing_key", "signing_token"}
    bearer = client.get("/readyz", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer scrape-me-please").json()
    assert "checks" in bearer


@pytest.mark.django_db
def test_readyz_names_no_exception_class_to_the_public(client, signing_key, settings):
    from unittest import mock

    from django.db import OperationalError

    settings.ISSUER_METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    with mock.patch("django.db.backends.base.base.BaseDatabaseWrapper.cursor", side_effect=OperationalError("down")):
        response = client.get("/readyz", REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}
    assert b"OperationalError" not in response.content


@pytest.mark.django_db
def test_api_schema_and_docs_need_a_role_not_only_staff(client, django_user_model):
    from tests.helpers import role

    staff = django_user_model.objects.create_user("norole", password="pw", is_staff=True)
    client.force_login(staff)
    for path in ("/api/schema/", "/api/docs/"):
        assert client.get(path).status_code == 403, path
    staff.groups.add(role("viewer"))
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/x", ""])
def test_a_refused_next_lands_on_the_dashboard(client, django_user_model, next_url):
    django_user_model.objects.create_user("staffer", password="the-right-password", is_staff=True)
    response = client.post(
        f"/admin/login/?next={next_url}", {"username": "staffer", "password": "the-right-password", "next": next_url}
    )
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
