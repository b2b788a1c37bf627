"""The runbook's procedures that can run here (docs/operations.md)."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from subscriptions.selectors import instance_by_license_key
from subscriptions.services import instance_activate
from tests.helpers import postgres_only, signing_backend_environment, sync

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.django_db
def test_a_new_pepper_invalidates_every_license_key_until_reactivation(
    client, enterprise_subscription, signing_key, settings
):
    instance_id = str(uuid.uuid4())
    old_key = instance_activate(
        activation_code=enterprise_subscription.activation_code, instance_identifier=instance_id
    ).license_key
    settings.LICENSE_KEY_PEPPER = "a-new-pepper-after-a-leak"
    assert instance_by_license_key(old_key) is None
    _, body = sync(client, old_key)
    assert "not valid" in body["errors"][0]["message"]
    new_key = instance_activate(
        activation_code=enterprise_subscription.activation_code, instance_identifier=instance_id
    ).license_key
    _, body = sync(client, new_key)
    assert body["data"]["cloudConnectorAccess"]["serviceToken"]["token"]


def _check(database_url: str, keks: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url,
        "KEY_ENCRYPTION_KEYS": keks,
        "SECRET_KEY": "restore-test",
        "LICENSE_KEY_PEPPER": "restore-test",
        **signing_backend_environment(),
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--database", "default"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )


@postgres_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("local_signing_keys")  # the restored keys must decrypt: a local key's matter
def test_a_dump_restores_into_a_fresh_database_with_the_same_keks(signing_key, settings, tmp_path):
    """pg_dump -Fc, pg_restore into a new database: with the same KEKs the restored keys decrypt and the start-up
    checks pass; with other KEKs they refuse (issuer.E001), as the runbook says. Backups are the owner's work."""
    source = connection.settings_dict
    user = (settings.DATABASE_OWNER_CREDENTIALS or source)["USER"] or "postgres"
    base = ["-h", source["HOST"] or "127.0.0.1", "-p", str(source["PORT"] or 5432), "-U", user]
    dump = tmp_path / "issuer.dump"
    subprocess.run(["pg_dump", *base, "-Fc", "-f", str(dump), source["NAME"]], check=True)
    restored = f"issuer_restore_{uuid.uuid4().hex[:8]}"
    subprocess.run(["psql", *base, "-q", "-d", "postgres", "-c", f"CREATE DATABASE {restored}"], check=True)
    try:
        subprocess.run(["pg_restore", *base, "-d", restored, str(dump)], check=True)
        url = f"postgres://{user}@{source['HOST'] or '127.0.0.1'}:{source['PORT'] or 5432}/{restored}"
        same = _check(url, ",".join(settings.KEY_ENCRYPTION_KEYS))
        assert same.returncode == 0, same.stderr
        other = _check(url, Fernet.generate_key().decode())
        assert other.returncode != 0 and "issuer.E001" in other.stderr
    finally:
        subprocess.run(["psql", *base, "-q", "-d", "postgres", "-c", f"DROP DATABASE IF EXISTS {restored}"], check=True)
