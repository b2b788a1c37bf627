"""What one process changes, another sees: the operator's CLI against the web process, through PostgreSQL and
Redis as in production (a real second process, not a simulated one)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
from django.conf import settings
from django.db import connection

from issuer.keys.selectors import MEMO_SECONDS
from tests.helpers import postgres_only, redis_only, signing_backend_environment, sync

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.django_db(transaction=True)


def other_process(*args: str) -> str:
    """Runs manage.py in a new process against this test's database and cache, with this test's secrets."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": settings.CACHES["default"]["LOCATION"],
        "SECRET_KEY": "cross-process-test",
        "KEY_ENCRYPTION_KEYS": ",".join(settings.KEY_ENCRYPTION_KEYS),
        "LICENSE_KEY_PEPPER": settings.LICENSE_KEY_PEPPER,
        "LOG_LEVEL": "WARNING",
        **signing_backend_environment(),
    }
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@postgres_only
@redis_only
def test_a_key_created_by_the_cli_reaches_the_web_jwks_within_a_second(client, signing_key):
    before = {key["kid"] for key in client.get("/oauth/discovery/keys").json()["keys"]}
    created = json.loads(other_process("signing_keys", "create", "--json"))
    time.sleep(MEMO_SECONDS + 0.2)
    after = {key["kid"] for key in client.get("/oauth/discovery/keys").json()["keys"]}
    assert after == before | {created["kid"]}


@postgres_only
@redis_only
def test_a_purchase_cancelled_elsewhere_shows_at_the_next_sync(client, activated):
    instance, key = activated
    sync(client, key)
    sync(client, key)  # the sync state is now cached in Redis
    purchase = instance.subscription.add_on_purchases.get()
    other_process(
        "shell",
        "-c",
        "from subscriptions.models import AddOnPurchase; from subscriptions.services import add_on_purchase_cancel; "
        f"add_on_purchase_cancel(AddOnPurchase.objects.get(pk={purchase.pk}))",
    )
    _, body = sync(client, key)
    claims = jwt.decode(
        body["data"]["cloudConnectorAccess"]["serviceToken"]["token"], options={"verify_signature": False}
    )
    assert "troubleshoot_job" not in claims["scopes"]
