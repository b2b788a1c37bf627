"""Settings, read once from the environment (and a local `.env`, which `make run` writes).

Every variable is declared, with its type, default and meaning, in the registry `config/environment.py` and read
here as `ENV["NAME"]` (an undeclared name fails the import); `.env.example` and docs/configuration.md are
generated from it. Secrets have no defaults: outside DEBUG a missing one is reported by the `config.E00x` system
checks, which stop `manage.py`, gunicorn and Celery at start-up (see `config/checks.py`).
"""

import datetime as dt
import os
from pathlib import Path

from config.environment import dotenv_load, environment_read
from config.logging import log_format_choose, logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

dotenv_load()
# Every variable, each read by its own type from one registry (config/environment.py); what does not parse, and an
# ISSUER_* name nobody reads, is reported by the config.E007 start-up check instead of a traceback.
ENV = environment_read(os.environ)
ENVIRONMENT_ERRORS = ENV.errors

DEBUG = ENV["DEBUG"]

# Missing secrets stay empty here and are reported by the system checks; DEBUG alone gets a throw-away key so
# that a developer's shell works without a .env.
SECRET_KEY = ENV["SECRET_KEY"]
SECRET_KEY_CONFIGURED = bool(SECRET_KEY)  # read by the check: Django refuses to hand out an empty SECRET_KEY
if not SECRET_KEY and DEBUG:
    SECRET_KEY = "insecure-debug-only-" + BASE_DIR.name
# Earlier secrets, still accepted for sessions and signatures and, through HKDF, the cache's HMAC keys
# (config/signed_cache.py): rotate by moving the old SECRET_KEY here, and drop it a day later.
SECRET_KEY_FALLBACKS = ENV["SECRET_KEY_FALLBACKS"]

# The port `make run` serves on; the default ISSUER_URL follows it, so a token's `iss` names the running server.
PORT = ENV["PORT"]
ISSUER_URL = (ENV["ISSUER_URL"] or f"http://127.0.0.1:{PORT}").rstrip("/")
ALLOWED_HOSTS = ENV["ALLOWED_HOSTS"]
CSRF_TRUSTED_ORIGINS = ENV["CSRF_TRUSTED_ORIGINS"] or [ISSUER_URL]

# Fernet keys (comma separated): the first encrypts, all decrypt. Protects signing keys and stored tokens.
KEY_ENCRYPTION_KEYS = ENV["KEY_ENCRYPTION_KEYS"]
# Server-side secret mixed into the HMAC that stores license keys.
LICENSE_KEY_PEPPER = ENV["LICENSE_KEY_PEPPER"]

# Who may read /metrics: these networks (the client address as the rate limits see it), or a bearer of the token.
ISSUER_METRICS_ALLOWED_NETWORKS = ENV["ISSUER_METRICS_ALLOWED_NETWORKS"]
ISSUER_METRICS_TOKEN = ENV["ISSUER_METRICS_TOKEN"]
# Who may post billable usage events (the AI gateway's Snowplow emitter sends no credentials); others get a 403.
ISSUER_COLLECTOR_ALLOWED_NETWORKS = ENV["ISSUER_COLLECTOR_ALLOWED_NETWORKS"]

# Audit events older than this many days are purged daily (the purge is itself an event); unset: kept forever.
ISSUER_AUDIT_RETENTION_DAYS = ENV["ISSUER_AUDIT_RETENTION_DAYS"]
# Signing keys: where new ones are made, and the PKCS#11 token (issuer/keys/hsm.py, docs/keys.md).
ISSUER_SIGNING_KEY_BACKEND = ENV["ISSUER_SIGNING_KEY_BACKEND"]
ISSUER_PKCS11_MODULE = ENV["ISSUER_PKCS11_MODULE"]
ISSUER_PKCS11_TOKEN_LABEL = ENV["ISSUER_PKCS11_TOKEN_LABEL"]
ISSUER_PKCS11_PIN_FILE = ENV["ISSUER_PKCS11_PIN_FILE"]
ISSUER_PKCS11_PIN = ENV["ISSUER_PKCS11_PIN"]

INSTALLED_APPS = [
    "config.admin_app.IssuerAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_prometheus",
    "rest_framework",
    "knox",  # admin API tokens: hashed at rest, expiring, revocable
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",  # Swagger UI served from our static files: no CDN, works offline
    "axes",
    "config",
    "audit",
    "unit_primitives",
    "subscriptions",
    "issuer",
    "credits",
]

# The machine doors (config/machine_doors.py: MACHINE_PATHS) pass by the `PagesOnly…` entries: no session, CSRF,
# authentication, messages, X-Frame-Options, login lockout or content security policy; pages run them all.
MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "config.logging.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.machine_doors.PagesOnlySessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "config.machine_doors.PagesOnlyCsrfViewMiddleware",
    "config.machine_doors.PagesOnlyAuthenticationMiddleware",
    "audit.context.AuditRequestMiddleware",
    "config.machine_doors.PagesOnlyMessageMiddleware",
    "config.machine_doors.PagesOnlyXFrameOptionsMiddleware",
    "config.machine_doors.PagesOnlyCSPMiddleware",
    "config.machine_doors.PagesOnlyAxesMiddleware",
    "config.unavailable.DatabaseUnavailableMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]
# Django's deploy checks (security.W002, W003) and django-axes' (axes.W002) look for their middleware by name; the
# pages-only forms are those classes, and config.E009 (config/checks.py) checks each is there, by class.
SILENCED_SYSTEM_CHECKS = ["security.W002", "security.W003", "axes.W002"]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": ENV["DATABASE_URL"]}
DATABASES["default"]["CONN_MAX_AGE"] = ENV["DATABASE_CONN_MAX_AGE"]
# PostgreSQL with two roles (config/database_roles.py): `migrate` connects as the owner and, when this names the
# runtime role, creates it if missing (with the password, when given) and grants it only what it needs; web,
# worker and beat then connect as that role through their own DATABASE_URL.
DATABASE_RUNTIME_ROLE = ENV["DATABASE_RUNTIME_ROLE"]
DATABASE_RUNTIME_PASSWORD = ENV["DATABASE_RUNTIME_PASSWORD"]
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# The sync's hot statements run on a server-binding cursor that prepares them (config.postgres.prepared_cursor);
# every other query keeps Django's client-side binding, which never prepares.
DATABASE_PREPARED_STATEMENTS = ENV["DATABASE_PREPARED_STATEMENTS"]
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and DATABASE_PREPARED_STATEMENTS:
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 0
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker, beat, CLI) share one file: wait for the lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
# Django's PostgreSQL backend, its per-request health check skipped while the connection was last used less than
# DATABASE_CHECK_IDLE_SECONDS ago (config/postgresql/base.py).
DATABASE_CHECK_IDLE_SECONDS = ENV["DATABASE_CHECK_IDLE_SECONDS"]
# Last syncs are batched per web process on PostgreSQL (subscriptions/services/last_sync_batch.py).
SYNC_RECORD_BATCH_SECONDS = ENV["SYNC_RECORD_BATCH_SECONDS"]
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["ENGINE"] = "config.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = ENV["REDIS_URL"]
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "config.cache.RedisCache",
            "LOCATION": REDIS_URL,
            # Fail fast when Redis is unreachable: the cache then degrades to misses (config/cache.py). Never
            # unpickle what Redis holds: ints, bytes and JSON only (config/signed_cache.py).
            "OPTIONS": {
                "socket_connect_timeout": 1,
                "socket_timeout": 1,
                "serializer": "config.signed_cache.PlainSerializer",
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "issuer"}}
# True when every process sees the same cache, so one process can invalidate what another cached.
CACHE_IS_SHARED = bool(REDIS_URL)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Every date as `2026-12-05 07:32 UTC`, on our pages and Django admin's (config/formats/en/formats.py).
FORMAT_MODULE_PATH = ["config.formats"]

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Collected (`collectstatic`: the image build, `make run`), hashed and compressed: cached for a year by browsers.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

LOGIN_URL = "admin:login"
# Where a login lands when its `next=` is refused (or absent): the dashboard, not Django's /accounts/profile/.
LOGIN_REDIRECT_URL = "admin:index"

# django-axes: five failed logins lock the username + address pair for 15 minutes, and four times as many from any
# addresses lock the username (config/login_lockout.py; `manage.py axes_reset_username <name>` unlocks).
AXES_FAILURE_LIMIT = ENV["AXES_FAILURE_LIMIT"]
AXES_USERNAME_FAILURE_LIMIT = 4 * AXES_FAILURE_LIMIT
AXES_COOLOFF_TIME = 0.25
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "username"]
AXES_HANDLER = "config.login_lockout.TieredLockoutHandler"
# The lock-out page says how long the lock holds and how to lift it (templates/admin/locked_out.html).
AXES_LOCKOUT_CALLABLE = "config.login_lockout.lockout_response"
AXES_RESET_ON_SUCCESS = True
# The address behind the TLS proxy, by the same rule as the rate limits (config/limits.py).
AXES_CLIENT_IP_CALLABLE = "config.limits.client_ip"

# Rate limits of the instance-facing doors (config/limits.py), in django-ratelimit's "N/period" form.
INSTANCE_RATE_PER_ADDRESS = ENV["INSTANCE_RATE_PER_ADDRESS"]
# The quota check for an authenticated service (an AI gateway asks for every user from one address): per credential.
QUOTA_RATE_PER_CREDENTIAL = ENV["QUOTA_RATE_PER_CREDENTIAL"]
INSTANCE_RATE_PER_LICENSE_KEY = ENV["INSTANCE_RATE_PER_LICENSE_KEY"]
ACTIVATION_RATE_PER_ADDRESS = ENV["ACTIVATION_RATE_PER_ADDRESS"]
# How many proxies in front of gunicorn append to X-Forwarded-For (only read when ISSUER_URL is https).
TRUSTED_PROXY_HOPS = ENV["TRUSTED_PROXY_HOPS"]
RATELIMIT_FAIL_OPEN = True  # a Redis outage must not cut every instance off
RATELIMIT_USE_CACHE = "default"
RATELIMIT_CACHE_PREFIX = "rl:"  # config.cache counts keys with this prefix in one round trip

SESSION_COOKIE_HTTPONLY = True
# Behind a TLS-terminating proxy (ISSUER_URL is https): trust its X-Forwarded-Proto and send cookies over TLS only.
if ISSUER_URL.startswith("https://"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    # HSTS (a year by default; subdomains and preload opt in, as `check --deploy` asks) and http -> https, except the
    # health checks that load balancers and compose make over plain http inside the network.
    SECURE_HSTS_SECONDS = ENV["SECURE_HSTS_SECONDS"]
    SECURE_HSTS_INCLUDE_SUBDOMAINS = ENV["SECURE_HSTS_INCLUDE_SUBDOMAINS"]
    SECURE_HSTS_PRELOAD = ENV["SECURE_HSTS_PRELOAD"]
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
CSRF_COOKIE_HTTPONLY = False
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy on every page (django-csp): nothing inline, nothing from elsewhere. The back office's
# styles are static files, and Swagger UI's start script is served as a file (SpectacularSwaggerSplitView).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",  # first: a refused token is a 401 with WWW-Authenticate
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser", "config.permissions.ModelPermissions"],
    "DEFAULT_PARSER_CLASSES": [
        "config.api.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.EstimatedCountPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "config.api.exception_handler",
}

# Admin API tokens (django-rest-knox): only a digest is stored, the token is shown once when an admin creates it
# (Django admin → Auth tokens → Add), each expires after API_TOKEN_TTL_DAYS and can be deleted at any time.
REST_KNOX = {
    "TOKEN_TTL": dt.timedelta(days=ENV["API_TOKEN_TTL_DAYS"]),
    "TOKEN_PREFIX": "iss_",
    "AUTO_REFRESH": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Cloud Connector token issuer",
    "DESCRIPTION": "ServiceAccessToken issuance for GitLab Self-Managed instances, and the admin API.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The schema and its docs are for staff: they map every admin operation.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAdminUser", "config.permissions.HasARole"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Every admin route's error answers (401, 403, 404, 400, 415, 503) with their bodies: config/api_schema.py.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "config.api_schema.admin_error_answers"],
}

# The issuer's own knobs (token TTL, publish lead, rotation period, ...): defaults in `config/environment.py`, each
# overridable as ISSUER_<NAME> in the environment (e.g. ISSUER_TOKEN_TTL_SECONDS); `issuer/conf.py` reads them.
ISSUER = ENV.knobs

CATALOG_PATH = ENV["CATALOG_PATH"]

# Celery: Redis in production; without REDIS_URL a filesystem broker that works across processes.
# (The filesystem URL names a host only so kombu does not warn "No hostname was supplied"; it is not contacted.)
CELERY_BROKER_URL = REDIS_URL or "filesystem://localhost//"
if not REDIS_URL:
    _broker_dir = BASE_DIR / "var" / "celery-broker"
    for _folder in ("processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)  # a fresh checkout works at once
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_TIME_LIMIT = 15 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 14 * 60
CELERY_TASK_ALWAYS_EAGER = False
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE = {
    "signing-key-policy": {
        "task": "issuer.tasks.signing_key_policy",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
    "token-refresh": {
        "task": "issuer.tasks.token_refresh",
        "schedule": 900.0,
        "options": {"expires": 800},
    },
    "fleet-rollup": {"task": "issuer.tasks.fleet_rollup", "schedule": 300.0, "options": {"expires": 280}},
    "token-records-retain": {
        "task": "issuer.tasks.token_records_retain",
        "schedule": 86400.0,
        "options": {"expires": 80000},
    },
    "audit-purge": {"task": "audit.tasks.audit_purge", "schedule": 86400.0, "options": {"expires": 80000}},
    # Daily, so the 1st is covered whenever beat started; a month's included credits are written once.
    "credit-included-grants": {
        "task": "credits.tasks.credit_included_grants_fix",
        "schedule": 86400.0,
        "options": {"expires": 80000},
    },
}

LOG_LEVEL = ENV["LOG_LEVEL"]
# config/wsgi.py runs the system checks before serving unless this is set (tools that only import the app).
SKIP_STARTUP_CHECKS = ENV["SKIP_STARTUP_CHECKS"]
# `json`, `text` or `auto`: readable lines in a terminal, JSON lines elsewhere (config/logging.py).
LOG_FORMAT = log_format_choose(ENV["LOG_FORMAT"])
LOGGING = logging_config(
    log_format=LOG_FORMAT,
    root_level=LOG_LEVEL,
    loggers={"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
)
