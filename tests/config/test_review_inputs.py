"""Issue 22 (low): what the issuer takes from its callers and its operator: X-Forwarded-For with no proxy, the body's
media type on the instance doors, and the deployment's secrets and hosts under `check --deploy`."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.test import RequestFactory, override_settings

from config.limits import client_ip

ROOT = Path(__file__).resolve().parents[2]


# --- TRUSTED_PROXY_HOPS=0: the header is not read --------------------------------------------------------------


@pytest.mark.parametrize("forwarded", [None, "", "203.0.113.66", "203.0.113.66, 198.51.100.7", "garbage"])
def test_no_trusted_proxy_means_the_forwarded_header_is_not_read(settings, forwarded):
    settings.ISSUER_URL = "https://issuer.example.test"
    settings.TRUSTED_PROXY_HOPS = 0
    extra = {} if forwarded is None else {"HTTP_X_FORWARDED_FOR": forwarded}
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.44", **extra)
    assert client_ip(request) == "192.0.2.44"


def test_no_trusted_proxy_login_counts_the_peer(client, settings, django_user_model, db):
    """Without the header (the case that raised IndexError) a login page answers normally."""
    settings.ISSUER_URL = "https://issuer.example.test"
    settings.TRUSTED_PROXY_HOPS = 0
    django_user_model.objects.create_user("staffer", password="right", is_staff=True)
    response = client.post("/admin/login/", {"username": "staffer", "password": "wrong"}, secure=True)
    assert response.status_code == 200


def test_one_trusted_proxy_still_reads_its_entry(settings):
    settings.ISSUER_URL = "https://issuer.example.test"
    settings.TRUSTED_PROXY_HOPS = 1
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.66, 198.51.100.7")
    assert client_ip(request) == "198.51.100.7"


# --- instance doors: application/json only ----------------------------------------------------------------------

SYNC = "query($licenseKey: String!, $gitlabVersion: String!) { cloudConnectorAccess(licenseKey: $licenseKey, gitlabVersion: $gitlabVersion) { serviceToken { token } } }"  # noqa: E501
ACTIVATE = (
    "mutation($input: CloudActivationActivateInput!) { cloudActivationActivate(input: $input) { licenseKey errors } }"
)


def _activation_body(code: str) -> str:
    variables = {
        "input": {
            "gitlabVersion": "17.11.0",
            "activationCode": code,
            "automated": False,
            "instanceIdentifier": "6a4c1a3e-4bde-4b6f-8d7c-2d0e5b3c9f10",
            "hostname": "gitlab.example.test",
        }
    }
    return json.dumps({"query": ACTIVATE, "variables": variables})


@pytest.mark.django_db
@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
def test_graphql_refuses_what_a_browser_sends_without_asking(
    client, enterprise_subscription, signing_key, content_type
):
    response = client.post(
        "/graphql", data=_activation_body(enterprise_subscription.activation_code), content_type=content_type
    )
    assert response.status_code == 415
    assert response["Content-Type"] == "application/json"
    assert "application/json" in response.json()["errors"][0]["message"]
    enterprise_subscription.refresh_from_db()
    assert enterprise_subscription.first_activated_at is None, "nothing was activated"


@pytest.mark.django_db
def test_graphql_takes_json_with_a_charset(client, activated):
    _, key = activated
    body = json.dumps({"query": SYNC, "variables": {"licenseKey": key, "gitlabVersion": "17.11.0"}})
    response = client.post("/graphql", data=body, content_type="application/json; charset=utf-8")
    assert response.status_code == 200 and response.json()["data"]["cloudConnectorAccess"]["serviceToken"]["token"]


@pytest.mark.django_db
def test_seat_links_refuse_a_body_that_is_not_declared_json(client, activated):
    _, key = activated
    body = json.dumps({"license_key": key, "timestamp": "2026-11-01T00:00:00Z"})
    response = client.post("/api/v1/seat_links", data=body, content_type="text/plain")
    assert response.status_code == 415
    assert response.json() == {"success": False, "error": "The request body must be sent as application/json."}


@pytest.mark.django_db
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_the_rest_token_door_refuses_a_body_that_is_not_json(client, activated, content_type):
    _, key = activated
    response = client.post(
        "/api/v1/service_access_tokens",
        data="gitlab_version=17.11.0",
        content_type=content_type,
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert response.status_code == 415
    assert "detail" in response.json()


def test_the_conformance_kit_declares_json_on_every_instance_door():
    kit = (ROOT.parent / "shared" / "conformance" / "check.py").read_text()
    posts = [line for line in kit.splitlines() if "requests.post(" in line]
    assert posts
    for line in posts:
        start = kit.index(line)
        call = kit[start : kit.index("timeout=", start)]
        assert "json=" in call or "application/json" in call or "instance_headers(" in call, line


# --- check --deploy ---------------------------------------------------------------------------------------------


def _deploy_ids(**overrides):
    with override_settings(**overrides):
        return {message.id for message in run_checks(include_deployment_checks=True)}


@pytest.mark.parametrize("pepper", ["a", "x" * 31, "test-pepper", "a" * 64, "ab" * 20])
def test_check_deploy_refuses_a_guessable_pepper(pepper):
    assert "config.E008" in _deploy_ids(LICENSE_KEY_PEPPER=pepper)


def test_check_deploy_accepts_what_make_run_and_the_tests_generate():
    assert "config.E008" not in _deploy_ids(LICENSE_KEY_PEPPER=secrets.token_urlsafe(32))


def test_write_env_generates_a_pepper_that_passes(tmp_path):
    from config.checks import EXAMPLE_PEPPERS, PEPPER_MIN_LENGTH

    env_file = tmp_path / ".env"
    subprocess.run([sys.executable, "scripts/write_env.py", str(env_file)], cwd=ROOT, check=True, capture_output=True)
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    pepper = values["LICENSE_KEY_PEPPER"]
    assert len(pepper) >= PEPPER_MIN_LENGTH and pepper.lower() not in EXAMPLE_PEPPERS
    assert "config.E008" not in _deploy_ids(LICENSE_KEY_PEPPER=pepper)


def test_check_deploy_warns_on_any_host():
    assert "config.W001" in _deploy_ids(ALLOWED_HOSTS=["*"])
    assert "config.W001" not in _deploy_ids(ALLOWED_HOSTS=["issuer.example.test"])


def test_check_deploy_fails_on_a_short_pepper_and_a_wildcard_host(tmp_path):
    from cryptography.fernet import Fernet

    unrelated = ("DJANGO_SETTINGS_MODULE", "REDIS_URL", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")
    env = {k: v for k, v in os.environ.items() if k not in unrelated}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        ISSUER_URL="https://issuer.example.test",
        ALLOWED_HOSTS="*",
        SECRET_KEY=secrets.token_urlsafe(50),
        KEY_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        LICENSE_KEY_PEPPER="a",
        DATABASE_URL=f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
        DEBUG="0",
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "config.E008" in done.stderr and "config.W001" in done.stderr
