"""Settings for the test suite: the real settings, plus throw-away secrets when the environment has none."""

import os

import environ
from cryptography.fernet import Fernet

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("KEY_ENCRYPTION_KEYS", Fernet.generate_key().decode())
os.environ.setdefault("LICENSE_KEY_PEPPER", "test-pepper")
os.environ.setdefault("ISSUER_URL", "http://testserver")
# Each sync writes its last sync itself: a test runs in a transaction the batch's writer thread cannot see
# (tests/subscriptions/test_last_sync_batch.py tests the batch, with committed rows and a real server).
os.environ.setdefault("SYNC_RECORD_BATCH_SECONDS", "0")

from config.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests serve the apps' static files as they are (no collectstatic run before them).
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
WHITENOISE_USE_FINDERS = True
CELERY_TASK_ALWAYS_EAGER = True
LOGGING["root"]["level"] = "WARNING"  # noqa: F405

# Each xdist worker gets its own Redis database, so a test may clear the cache without touching another's.
if REDIS_URL:  # noqa: F405
    _worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or "0"
    _redis_db = 1 + int(_worker) % 15
    _base = REDIS_URL.rsplit("/", 1)[0] if REDIS_URL.count("/") > 2 else REDIS_URL  # noqa: F405
    CACHES["default"]["LOCATION"] = f"{_base}/{_redis_db}"  # noqa: F405

# Two roles, as in production: pytest creates and migrates its databases as the owner (DATABASE_OWNER_URL), then
# every test runs as the runtime role of DATABASE_URL (tests/conftest.py switches the connection after the
# migrations). Flushing a transactional test's tables, and dropping the databases at the end, are the owner's.
DATABASE_RUNTIME_CREDENTIALS = DATABASE_OWNER_CREDENTIALS = None
# (Variables of the test suite only, so not in config/environment.py's registry of what the issuer reads.)
_owner_url = os.environ.get("DATABASE_OWNER_URL", "")
if _owner_url and DATABASES["default"]["ENGINE"].endswith("postgresql"):  # noqa: F405
    _runtime = DATABASES["default"]  # noqa: F405
    DATABASE_RUNTIME_CREDENTIALS = {"USER": _runtime["USER"], "PASSWORD": _runtime["PASSWORD"]}
    DATABASES["default"] = {  # noqa: F405
        **_runtime,
        **environ.Env.db_url_config(_owner_url),
        "NAME": _runtime["NAME"],
        "ENGINE": _runtime["ENGINE"],
    }
    DATABASE_OWNER_CREDENTIALS = {"USER": DATABASES["default"]["USER"], "PASSWORD": DATABASES["default"]["PASSWORD"]}  # noqa: F405
    DATABASE_RUNTIME_ROLE = DATABASE_RUNTIME_ROLE or _runtime["USER"]  # noqa: F405
