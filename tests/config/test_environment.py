"""Every ISSUER_* variable is read by its own type from one registry: a documented value starts the issuer, a
value that does not parse or a name nobody reads is a clear start-up error, never a traceback."""

import os
import re
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

from config.environment import issuer_environment_read

ROOT = Path(__file__).resolve().parents[2]

# Realistic values for what .env.example leaves empty or shows as a placeholder of this machine's paths.
REALISTIC = {
    "SECRET_KEY": "a-long-random-secret-key-for-this-test-0123456789",
    "KEY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "LICENSE_KEY_PEPPER": "a-long-random-pepper-for-this-test-0123456789",
    "ISSUER_METRICS_TOKEN": "metrics-bearer-token-abc",
    "ISSUER_METRICS_ALLOWED_NETWORKS": "10.0.0.0/8,127.0.0.1/8,::1/128",
    "POSTGRES_PASSWORD": "change-me",
    "CATALOG_PATH": str(ROOT / "unit_primitives" / "catalog"),
}


def _documented() -> dict[str, str]:
    example = (ROOT / ".env.example").read_text()
    return dict(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]*)=(.*)$", example, re.MULTILINE))


def _django(env_overrides: dict[str, str], code: str, tmp_path) -> subprocess.CompletedProcess:
    """A fresh process with the real settings, this environment and no .env file."""
    env = {
        key: value for key, value in os.environ.items() if key not in _documented() and key != "DJANGO_SETTINGS_MODULE"
    }
    env.update(env_overrides, DJANGO_SETTINGS_MODULE="config.settings")
    env.setdefault("DATABASE_URL", f"sqlite:///{tmp_path}/db.sqlite3")
    prelude = "import environ; environ.Env.read_env = lambda *a, **k: None; import django; django.setup(); "
    return subprocess.run(
        [sys.executable, "-c", prelude + code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_every_documented_variable_with_a_realistic_value_starts_django(tmp_path):
    values = {name: REALISTIC.get(name) or shown for name, shown in _documented().items()}
    values = {name: value for name, value in values.items() if value}
    values["DATABASE_URL"] = f"sqlite:///{tmp_path}/db.sqlite3"
    values.pop("REDIS_URL", None)  # the check below needs no broker; Redis is exercised by the Redis tests
    assert {"ISSUER_METRICS_TOKEN", "ISSUER_AUDIT_RETENTION_DAYS", "ISSUER_TOKEN_TTL_SECONDS"} <= set(values)
    result = _django(
        values,
        "from django.core.management import call_command; call_command('check'); "
        "from django.conf import settings; from issuer.conf import issuer_settings; "
        "print(settings.ISSUER_METRICS_TOKEN, settings.ISSUER_METRICS_ALLOWED_NETWORKS, "
        "settings.ISSUER_AUDIT_RETENTION_DAYS, issuer_settings.TOKEN_TTL_SECONDS)",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        "metrics-bearer-token-abc ['10.0.0.0/8', '127.0.0.1/8', '::1/128'] 730 259200"
    )


def test_a_bad_value_or_an_unknown_name_stops_start_up_naming_it(tmp_path):
    result = _django(
        {"DEBUG": "1", "ISSUER_TOKEN_TTL_SECONDS": "three days", "ISSUER_TOKEN_TTL": "60"},
        "import sys, runpy; sys.argv = ['manage.py', 'check']; runpy.run_path('manage.py', run_name='__main__')",
        tmp_path,
    )
    assert result.returncode != 0
    assert "config.E007" in result.stderr and "Traceback" not in result.stderr
    assert "ISSUER_TOKEN_TTL_SECONDS='three days' is not an integer" in result.stderr
    assert "ISSUER_TOKEN_TTL is not a setting of this issuer" in result.stderr


def test_each_variable_is_read_by_its_own_type():
    read = issuer_environment_read(
        {
            "ISSUER_METRICS_TOKEN": "abc",
            "ISSUER_METRICS_ALLOWED_NETWORKS": "10.0.0.0/8, 192.168.0.0/16",
            "ISSUER_AUDIT_RETENTION_DAYS": "",
            "ISSUER_RSA_KEY_SIZE": "3072",
            "PATH": "/usr/bin",
        }
    )
    assert read.errors == []
    assert read.settings["ISSUER_METRICS_TOKEN"] == "abc"
    assert read.settings["ISSUER_METRICS_ALLOWED_NETWORKS"] == ["10.0.0.0/8", "192.168.0.0/16"]
    assert read.settings["ISSUER_AUDIT_RETENTION_DAYS"] is None
    assert read.knobs == {"RSA_KEY_SIZE": 3072}  # the unset knobs keep the defaults of issuer/conf.py


def test_the_defaults_hold_when_nothing_is_set():
    read = issuer_environment_read({})
    assert read.errors == [] and read.knobs == {}
    assert read.settings["ISSUER_METRICS_ALLOWED_NETWORKS"] == ["127.0.0.1/8", "::1/128"]
    assert read.settings["ISSUER_AUDIT_RETENTION_DAYS"] is None and read.settings["ISSUER_METRICS_TOKEN"] == ""
