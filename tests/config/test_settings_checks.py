import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.test import override_settings

from config.startup import run_startup_checks

ROOT = Path(__file__).resolve().parents[2]


def _ids(**overrides):
    with override_settings(**overrides):
        return {message.id for message in run_checks() if message.is_serious()}


def test_complete_configuration_passes():
    assert not {"config.E001", "config.E002", "config.E003", "config.E004"} & _ids()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"SECRET_KEY_CONFIGURED": False}, "config.E001"),
        ({"KEY_ENCRYPTION_KEYS": []}, "config.E002"),
        ({"LICENSE_KEY_PEPPER": ""}, "config.E003"),
        ({"KEY_ENCRYPTION_KEYS": ["not-a-fernet-key"]}, "config.E004"),
    ],
)
def test_missing_or_bad_secret_is_a_startup_error(overrides, expected):
    assert expected in _ids(DEBUG=False, **overrides)


def test_debug_tolerates_missing_secrets_but_not_bad_ones():
    assert "config.E002" not in _ids(DEBUG=True, KEY_ENCRYPTION_KEYS=[])
    assert "config.E004" in _ids(DEBUG=True, KEY_ENCRYPTION_KEYS=["short"])


@pytest.mark.django_db
def test_startup_checks_exit_with_the_message(capsys):
    with override_settings(DEBUG=False, LICENSE_KEY_PEPPER=""), pytest.raises(SystemExit) as stopped:
        run_startup_checks()
    assert stopped.value.code == 3
    assert "LICENSE_KEY_PEPPER is not set" in capsys.readouterr().err


def _clean_env(**extra):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("SECRET_KEY", "KEY_ENCRYPTION_KEYS", "LICENSE_KEY_PEPPER", "DJANGO_SETTINGS_MODULE")
    }
    env.update(extra)
    return env


def test_manage_py_refuses_to_start_without_secrets(tmp_path):
    """A real process with real settings and no .env: the checks stop it with a readable message."""
    env = _clean_env(DEBUG="0", DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import environ; environ.Env.read_env = lambda *a, **k: None; "
            "import sys; sys.argv = ['manage.py', 'check']; import runpy; runpy.run_path('manage.py', run_name='__main__')",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert "KEY_ENCRYPTION_KEYS is not set" in result.stderr


def test_issuer_knobs_come_from_the_environment(tmp_path):
    env = _clean_env(ISSUER_TOKEN_TTL_SECONDS="7200", DEBUG="1")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='config.settings'; django.setup(); "
            "from issuer.conf import issuer_settings; print(issuer_settings.TOKEN_TTL_SECONDS)",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.strip() == "7200", result.stderr


def test_unknown_issuer_knob_is_refused():
    from issuer.conf import issuer_settings

    with (
        override_settings(ISSUER={"TOKEN_TTL": 5}),
        pytest.raises(ValueError, match="Unknown ISSUER settings: TOKEN_TTL"),
    ):
        _ = issuer_settings.TOKEN_TTL_SECONDS


def test_an_unknown_count_follows_ratelimit_fail_open(settings):
    """Redis away: the sync's per-key count is unknown, and it is let through or refused as django-ratelimit would."""
    from config.limits import license_key_rate_count

    counting = license_key_rate_count("cdl_" + "x" * 40)
    settings.RATELIMIT_FAIL_OPEN = True
    assert counting.refusal(None) is None
    settings.RATELIMIT_FAIL_OPEN = False
    refused = counting.refusal(None)
    assert refused is not None and refused.status == 429
    assert counting.refusal(1) is None and counting.refusal(counting.limit + 1).status == 429
