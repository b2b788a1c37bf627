"""Every environment variable the issuer reads, in one registry: name, type, default, who reads it and why.

`config/settings.py` (and `config/gunicorn.conf.py`, `config/wsgi.py`) read variables only through
`environment_read(...)[NAME]`, which refuses a name this registry lacks; `tests/config/test_environment.py` also
records every environment read made while the settings, the WSGI app, Celery and gunicorn's configuration load,
and fails on one that is not registered. `scripts/generate_config_docs.py` writes `.env.example` and the
reference table of `docs/configuration.md` from this list, and a test fails when the committed files differ.

A value that does not parse, or an `ISSUER_*` name nobody reads (a typo would otherwise go unnoticed), never
crashes the import: it is collected and reported by the `config.E007` start-up check, which stops `manage.py`,
gunicorn and Celery with a message naming the variable. Until then the variable keeps its default (its
`fallback`, where the default would be a dangerous guess: a malformed `DATABASE_URL` is never SQLite).

To add a variable: one `Variable(...)` below, read it in settings as `ENV["NAME"]`, then run
`.venv/bin/python scripts/generate_config_docs.py`.
"""

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import environ

PREFIX = "ISSUER_"
BASE_DIR = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Kind:
    """A type of value: how its text parses, how the docs name it, and how a default is written back as text."""

    name: str
    parse: Callable[[str], object]
    expected: str  # "... is not <expected>" in the E007 message

    def text(self, value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, list | tuple):
            return ",".join(str(part) for part in value)
        return str(value)


def _integer(text: str) -> int:
    return int(text.strip())


def _optional_integer(text: str) -> int | None:
    return int(text.strip()) if text.strip() else None


def _boolean(text: str) -> bool:
    word = text.strip().lower()
    if word in {"1", "true", "yes", "on"}:
        return True
    if word in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("use 1 or 0")


def _list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _database_url(text: str) -> dict:
    config = environ.Env.db_url_config(text.strip())
    if not str(config.get("ENGINE", "")).startswith("django.db.backends."):
        raise ValueError("use postgres://user:password@host:5432/name or sqlite:///path")
    return config


def _log_format(text: str) -> str:
    if text.strip().lower() not in ("json", "text", "auto"):
        raise ValueError("use json, text or auto")
    return text.strip().lower()


def _rate(text: str) -> str:
    if not re.fullmatch(r"\d+/\d*[smhd]", text.strip()):
        raise ValueError("use N/s, N/m, N/h or N/d, e.g. 120/m")
    return text.strip()


def _signing_key_backend(text: str) -> str:
    if text.strip() not in ("local", "pkcs11"):
        raise ValueError("use local or pkcs11")
    return text.strip()


TEXT = Kind("text", str.strip, "text")
SECRET = Kind("secret", str.strip, "a secret")
INTEGER = Kind("integer", _integer, "an integer")
OPTIONAL_INTEGER = Kind("integer or empty", _optional_integer, "a number of days, or empty")
BOOLEAN = Kind("boolean (1/0)", _boolean, "a boolean")
LIST = Kind("comma-separated list", _list, "a list")
URL = Kind("URL", str.strip, "a URL")
DATABASE_URL = Kind("database URL", _database_url, "a database URL")
PATH = Kind("path", lambda text: Path(text.strip()), "a path")
RATE = Kind("rate (N/s, /m, /h, /d)", _rate, "a rate")
LOG_FORMAT = Kind("json, text or auto", _log_format, "a log format")
SIGNING_KEY_BACKEND = Kind("local or pkcs11", _signing_key_backend, "local or pkcs11")

# Sections, in the order `.env.example` and the reference table show them.
SECRETS = "secrets (required outside DEBUG: start-up stops with a clear message when one is missing)"
COMPOSE = "docker compose only (read by docker-compose.yml, not by the issuer)"
WHERE = "where things are"
BEHAVIOUR = "behaviour"
KNOBS = "the issuer's knobs (seconds unless named otherwise)"
SECTIONS = (SECRETS, COMPOSE, WHERE, BEHAVIOUR, KNOBS)

_UNSET = object()


@dataclass(frozen=True)
class Variable:
    name: str
    kind: Kind
    default: object
    description: str  # Markdown: the reference table shows it as is, `.env.example` without link targets
    section: str
    read_by: str = "config/settings.py"
    knob: bool = False  # one of `settings.ISSUER`'s knobs (`issuer/conf.py`), by its name without the prefix
    required: bool = False  # a secret without a default: `.env.example` leaves `NAME=` to fill in
    shown_default: str = ""  # how the docs show a default that settings derive (e.g. from PORT)
    example: str = ""  # what `.env.example` shows (commented) when the default is empty
    in_env_file: bool = True  # False: read before `.env` is (DJANGO_SETTINGS_MODULE), so only the environment works
    fallback: object = field(default=_UNSET)  # the value when the given text does not parse (default: `default`)

    def on_error(self) -> object:
        return self.default if self.fallback is _UNSET else self.fallback


def _knob(name: str, default: int, description: str) -> Variable:
    return Variable(PREFIX + name, INTEGER, default, description, KNOBS, knob=True)


VARIABLES = [
    # --- secrets ---
    Variable(
        "SECRET_KEY",
        SECRET,
        "",
        "Django's signing secret (sessions, CSRF, and through HKDF the HMAC of every cached value).",
        SECRETS,
        required=True,
    ),
    Variable(
        "SECRET_KEY_FALLBACKS",
        LIST,
        [],
        "Earlier `SECRET_KEY`s, still accepted for sessions and for the cache's HMAC while what they signed lives: "
        "rotate by moving the old key here and the new one into `SECRET_KEY`, and drop the old one a day later.",
        SECRETS,
    ),
    Variable(
        "KEY_ENCRYPTION_KEYS",
        LIST,
        [],
        "Fernet keys: the first encrypts, all decrypt (signing keys, stored tokens). Rotate: put a new key first, "
        "run `signing_keys rewrap`, then drop the old one ([runbook](operations.md)).",
        SECRETS,
        required=True,
    ),
    Variable(
        "LICENSE_KEY_PEPPER",
        SECRET,
        "",
        "Secret of the HMAC-SHA256 that stores license keys; changing it invalidates every license key (every "
        "instance must activate again). `check --deploy` refuses one shorter than 32 characters (`config.E008`).",
        SECRETS,
        required=True,
    ),
    # --- docker compose only ---
    Variable(
        "POSTGRES_PASSWORD",
        SECRET,
        "issuer",
        "The password of the compose stack's PostgreSQL role `issuer`, the owner that migrates; only the migrate "
        "service receives it.",
        COMPOSE,
        read_by="docker-compose.yml",
        example="change-me",
    ),
    Variable(
        "POSTGRES_APP_PASSWORD",
        SECRET,
        "issuer_app",
        "The password of the runtime role `issuer_app` that web, worker and beat connect as (URL-safe characters "
        "only); migrate creates the role and sets it.",
        COMPOSE,
        read_by="docker-compose.yml",
        example="change-me",
    ),
    Variable(
        "REDIS_PASSWORD",
        SECRET,
        "issuer",
        "The password of Redis's ACL user `issuer` (URL-safe characters only: it is part of `REDIS_URL`). The "
        "compose Redis has no anonymous user.",
        COMPOSE,
        read_by="docker-compose.yml",
        example="change-me",
    ),
    # --- where things are ---
    Variable(
        "PORT",
        INTEGER,
        8000,
        "The port `make run` serves on (`make run PORT=9000`); the default `ISSUER_URL` follows it.",
        WHERE,
    ),
    Variable(
        "ISSUER_URL",
        URL,
        "",
        "Public base URL: the tokens' `iss`, the discovery document's `issuer` and `jwks_uri`. When `https://`, "
        "the proxy's `X-Forwarded-Proto` is trusted, cookies are TLS-only and HSTS is sent.",
        WHERE,
        shown_default="http://127.0.0.1:$PORT",
        example="http://127.0.0.1:8000",
    ),
    Variable(
        "DATABASE_URL",
        DATABASE_URL,
        _database_url(f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        "The database: `postgres://user:password@host:5432/issuer` (psycopg 3) in production; by default the SQLite "
        "file `db.sqlite3` in the project folder.",
        WHERE,
        shown_default="sqlite:///db.sqlite3",
        example="sqlite:///db.sqlite3",
        fallback={"ENGINE": "django.db.backends.dummy"},
    ),
    Variable(
        "REDIS_URL",
        URL,
        "",
        "Celery broker and Django cache, with Redis's credentials (`redis://issuer:PASSWORD@redis:6379/0`). Unset: "
        "a filesystem broker under `var/` and the local-memory cache.",
        WHERE,
        example="redis://127.0.0.1:6379/0",
    ),
    Variable(
        "ALLOWED_HOSTS",
        LIST,
        ["127.0.0.1", "localhost", "[::1]", "testserver"],
        "Host names the web server answers.",
        WHERE,
    ),
    Variable(
        "CSRF_TRUSTED_ORIGINS",
        LIST,
        [],
        "Origins allowed to post forms.",
        WHERE,
        shown_default="ISSUER_URL",
        example="https://issuer.example.com",
    ),
    Variable(
        "CATALOG_PATH",
        PATH,
        BASE_DIR / "unit_primitives" / "catalog",
        "Folder of the unit-primitive catalog.",
        WHERE,
        shown_default="unit_primitives/catalog",
        example="/srv/catalog",
    ),
    # --- behaviour ---
    Variable("DEBUG", BOOLEAN, False, "Django's debug mode (never in production).", BEHAVIOUR),
    Variable(
        "LOG_LEVEL",
        TEXT,
        "INFO",
        "Root log level; logs carry a request id, secrets redacted.",
        BEHAVIOUR,
    ),
    Variable(
        "LOG_FORMAT",
        LOG_FORMAT,
        "auto",
        "`json`, `text` or `auto`: readable lines (`2026-12-05 07:32:10 INFO  logger [request id] message "
        "key=value`) when the logs go to a terminal (`make run`), JSON lines everywhere else (containers, systemd, "
        "files, pipes); the same for Django, Celery and gunicorn.",
        BEHAVIOUR,
        read_by="config/settings.py, config/gunicorn.conf.py",
    ),
    Variable(
        "RUN_BANNER",
        BOOLEAN,
        False,
        "`1`: gunicorn prints `Issuer running at …` once it listens (`make run` sets it).",
        BEHAVIOUR,
        read_by="config/gunicorn.conf.py",
    ),
    Variable(
        "WEB_CONCURRENCY",
        INTEGER,
        2,
        "gunicorn worker processes per web server or container (gunicorn's own variable). Its access lines end "
        "with the `request_id` the application's lines carry (the response's `X-Request-Id`) and leave out "
        "`/static/` files.",
        BEHAVIOUR,
        read_by="config/gunicorn.conf.py",
    ),
    Variable(
        "WEB_THREADS",
        INTEGER,
        4,
        "Requests each gunicorn worker serves at once (gthread workers: a sync spends most of its time waiting on "
        "PostgreSQL and Redis). Each thread holds its own database connection, and each worker one more for its "
        "last syncs' writer (SYNC_RECORD_BATCH_SECONDS): size WEB_CONCURRENCY x (WEB_THREADS + 1) x web nodes, "
        "plus the Celery workers, below PostgreSQL's max_connections.",
        BEHAVIOUR,
        read_by="config/gunicorn.conf.py",
    ),
    Variable(
        "WEB_TIMEOUT",
        INTEGER,
        300,
        "Seconds a gunicorn worker may spend on one request before it is restarted: long enough for the back "
        "office's largest CSV export (see [Back office](backoffice.md)); keep the proxy's read timeout at least as "
        "long.",
        BEHAVIOUR,
        read_by="config/gunicorn.conf.py",
    ),
    Variable(
        "DJANGO_SETTINGS_MODULE",
        TEXT,
        "config.settings",
        "Django's settings module (the test suite uses `config.test_settings`); read before `.env` is.",
        BEHAVIOUR,
        read_by="manage.py, config/wsgi.py, config/celery.py",
        in_env_file=False,
    ),
    Variable(
        "SKIP_STARTUP_CHECKS",
        BOOLEAN,
        False,
        "`1`: the WSGI app starts without running the system checks first (for tools that import it, never for "
        "a server).",
        BEHAVIOUR,
        read_by="config/wsgi.py",
    ),
    Variable(
        "DATABASE_CONN_MAX_AGE",
        INTEGER,
        60,
        "Seconds a database connection is reused.",
        BEHAVIOUR,
    ),
    Variable(
        "DATABASE_CHECK_IDLE_SECONDS",
        INTEGER,
        1,
        "PostgreSQL: a connection idle this long (since its last query) is checked (`SELECT 1`) before a request "
        "uses it, and replaced when dead; one used more recently is used at once (the check was a round trip on "
        "every sync that reads or writes the database). `0` checks before every request, as Django's "
        "`CONN_HEALTH_CHECKS` does.",
        BEHAVIOUR,
    ),
    Variable(
        "SYNC_RECORD_BATCH_SECONDS",
        INTEGER,
        1,
        "PostgreSQL: an instance's last sync, when it is all a sync changed, is kept by its web process and written "
        "with the others within this many seconds, in one statement (a process killed without its exit loses its "
        "last second's; each web process holds one more database connection, the writer's). `0` writes each with "
        "its sync.",
        BEHAVIOUR,
    ),
    Variable(
        "DATABASE_PREPARED_STATEMENTS",
        BOOLEAN,
        True,
        "PostgreSQL: the sync's few statements (its inputs' read, a minted token's record, the instance's "
        "bookkeeping) are prepared once per connection, not planned at every call. `0` behind a pooler that "
        "cannot keep prepared statements (PgBouncer in transaction mode before 1.22, or without "
        "`max_prepared_statements`).",
        BEHAVIOUR,
    ),
    Variable(
        "DATABASE_RUNTIME_ROLE",
        TEXT,
        "",
        "PostgreSQL: the role web, worker and beat connect as. Set for `migrate` (which connects as the owner), it "
        "creates the role when missing and grants it only what it needs after every migration (`manage.py "
        "database_roles` does the same by hand); web, worker and beat then use "
        "`DATABASE_URL=postgres://<runtime role>:<password>@host:5432/issuer`.",
        BEHAVIOUR,
        example="issuer_app",
    ),
    Variable(
        "DATABASE_RUNTIME_PASSWORD",
        SECRET,
        "",
        "The runtime role's password, set by `migrate` each time (leave empty where the role authenticates otherwise).",
        BEHAVIOUR,
    ),
    Variable(
        "AXES_FAILURE_LIMIT",
        INTEGER,
        5,
        "Failed logins before the username + address pair is locked out for 15 minutes; four times as many from "
        "any addresses lock the username everywhere.",
        BEHAVIOUR,
    ),
    Variable(
        "INSTANCE_RATE_PER_ADDRESS",
        RATE,
        "120/m",
        "Requests per client address to `/graphql`, the REST token endpoint and seat links.",
        BEHAVIOUR,
    ),
    Variable(
        "INSTANCE_RATE_PER_LICENSE_KEY",
        RATE,
        "30/m",
        "Syncs and seat links per license key.",
        BEHAVIOUR,
    ),
    Variable(
        "ACTIVATION_RATE_PER_ADDRESS",
        RATE,
        "10/h",
        "Activation attempts per client address.",
        BEHAVIOUR,
    ),
    Variable(
        "QUOTA_RATE_PER_CREDENTIAL",
        RATE,
        "12000/m",
        "Quota checks (`HEAD /api/v1/consumers/resolve`) per service credential (`X-Admin-Email`/`X-Admin-Token`): "
        "a gateway asks for every user from one address, so no per-address limit applies to it "
        "([GitLab Credits](credits.md)).",
        BEHAVIOUR,
    ),
    Variable(
        "TRUSTED_PROXY_HOPS",
        INTEGER,
        1,
        "Proxies in front of gunicorn that append to `X-Forwarded-For` (read only with an https `ISSUER_URL`); the "
        "client address is the entry the outermost of them appended (entries further left are the caller's words, "
        "never trusted); `0`: no proxy, the header is not read and the address is the TCP peer.",
        BEHAVIOUR,
    ),
    Variable(
        "SECURE_HSTS_SECONDS",
        INTEGER,
        31536000,
        "With an https `ISSUER_URL`: the HSTS max-age (plain http is then redirected to https, except `/healthz` "
        "and `/readyz`).",
        BEHAVIOUR,
    ),
    Variable("SECURE_HSTS_INCLUDE_SUBDOMAINS", BOOLEAN, True, "HSTS covers subdomains.", BEHAVIOUR),
    Variable("SECURE_HSTS_PRELOAD", BOOLEAN, True, "HSTS asks browsers' preload lists to include the host.", BEHAVIOUR),
    Variable(
        "API_TOKEN_TTL_DAYS",
        INTEGER,
        30,
        "Days an admin API token lives (django-rest-knox: stored as a digest, shown once; created in the back "
        "office: Auth tokens → Add).",
        BEHAVIOUR,
    ),
    # --- the issuer's knobs ---
    Variable(
        "ISSUER_METRICS_ALLOWED_NETWORKS",
        LIST,
        ["127.0.0.1/8", "::1/128"],
        "Who may read `/metrics` (the client address as the rate limits see it); anyone else gets a 403. Each "
        "entry is checked as a network by `config.E006`.",
        KNOBS,
    ),
    Variable(
        "ISSUER_METRICS_TOKEN",
        SECRET,
        "",
        "A bearer token that also opens `/metrics` (`Authorization: Bearer …`), for a scraper outside those networks.",
        KNOBS,
    ),
    Variable(
        "ISSUER_COLLECTOR_ALLOWED_NETWORKS",
        LIST,
        ["127.0.0.1/8", "::1/128"],
        "Who may post billable usage events to the Snowplow collector (`/com.snowplowanalytics.snowplow/tp2`, "
        "`/i`; the AI gateway's `AIGW_BILLING_EVENT__ENDPOINT`): its emitter sends no credentials, so anyone else "
        "gets a 403 ([GitLab Credits](credits.md)). Checked by `config.E006` too.",
        KNOBS,
    ),
    Variable(
        "ISSUER_AUDIT_RETENTION_DAYS",
        OPTIONAL_INTEGER,
        None,
        "Audit events older than this many days are purged daily by `audit.tasks.audit_purge`, which records the "
        "purge as an event; unset: kept forever.",
        KNOBS,
        shown_default="(kept forever)",
        example="730",
    ),
    Variable(
        "ISSUER_SIGNING_KEY_BACKEND",
        SIGNING_KEY_BACKEND,
        "local",
        "Where NEW signing keys are made: `local` (encrypted in the database with `KEY_ENCRYPTION_KEYS`) or "
        "`pkcs11` (inside the PKCS#11 token, never leaving it). Each key keeps the backend it was made in, so a "
        "rotation moves from one to the other ([Keys](keys.md#where-the-private-keys-live-local-or-pkcs11)).",
        BEHAVIOUR,
    ),
    Variable(
        "ISSUER_PKCS11_MODULE",
        TEXT,
        "",
        "The HSM's PKCS#11 library (Debian's SoftHSM2: `/usr/lib/softhsm/libsofthsm2.so`).",
        WHERE,
        example="/usr/lib/softhsm/libsofthsm2.so",
    ),
    Variable(
        "ISSUER_PKCS11_TOKEN_LABEL",
        TEXT,
        "",
        "The label of the token that holds the signing keys (found by label, never by slot number).",
        WHERE,
        example="issuer",
    ),
    Variable(
        "ISSUER_PKCS11_PIN_FILE",
        TEXT,
        "",
        "A file holding the token's user PIN, readable by the issuer's user alone (start-up refuses a looser "
        "mode: `issuer.E008`).",
        WHERE,
        example="/etc/issuer/pkcs11-pin",
    ),
    Variable(
        "ISSUER_PKCS11_PIN",
        SECRET,
        "",
        "The token's user PIN itself, where no file can be mounted (`ISSUER_PKCS11_PIN_FILE` is preferred); never "
        "logged.",
        SECRETS,
    ),
    _knob("TOKEN_TTL_SECONDS", 3 * 86400, "Token lifetime (`exp - iat`)."),
    _knob("NBF_BACKDATE_SECONDS", 5, "`nbf = iat - this`."),
    _knob("PUBLISH_LEAD_SECONDS", 48 * 3600, "A new key is in the JWKS this long before it signs."),
    _knob("VALIDATOR_CACHE_SECONDS", 86400, "How long validators cache our JWKS (the AI gateway: 24 h)."),
    _knob(
        "CLOCK_SKEW_SECONDS",
        300,
        "Added to the retire overlap: a retired key stays published for token TTL + validator cache + this after "
        "it last signed.",
    ),
    _knob("ROTATION_PERIOD_SECONDS", 90 * 86400, "How long a key signs before the policy replaces it."),
    _knob(
        "REFRESH_THRESHOLD_SECONDS",
        60 * 3600,
        "A stored token with less life left is re-minted; more than GitLab's own ~2 days.",
    ),
    _knob("JWKS_MAX_AGE_SECONDS", 3600, "`Cache-Control: max-age` of discovery and JWKS."),
    _knob("RSA_KEY_SIZE", 2048, "Size of new keys (2048, 3072 or 4096)."),
    _knob("SYNC_THROTTLE_PER_MINUTE", 30, "REST token requests per instance per minute (429 beyond)."),
    _knob("REFRESH_CHUNK_SIZE", 1000, "Instances per refresh task fanned out to the workers."),
    _knob(
        "SYNC_STATE_CACHE_SECONDS",
        900,
        "How long a sync's inputs stay in Redis (0 turns the cache off; never used without Redis).",
    ),
    _knob(
        "TOKEN_RECORD_RETENTION_DAYS",
        400,
        "Token records (jti, kid, scopes, times) older than this are removed daily: on PostgreSQL by dropping "
        "whole monthly partitions, elsewhere by batched deletes; each removal is an audit event.",
    ),
    _knob(
        "VALIDATOR_FORGET_DAYS",
        7,
        "A validator (a client of the JWKS) not seen for this long no longer holds a rotation back, and is dropped.",
    ),
]
REGISTRY = {variable.name: variable for variable in VARIABLES}
KNOB_DEFAULTS = {variable.name.removeprefix(PREFIX): variable.default for variable in VARIABLES if variable.knob}


class UnregisteredVariable(KeyError):
    """Settings asked for a variable that `config/environment.py` does not declare."""


@dataclass
class Environment:
    values: dict[str, object]  # every registered variable: its parsed value, or its default
    given: set[str]  # the names the environment sets
    errors: list[str]

    def __getitem__(self, name: str) -> object:
        if name not in REGISTRY:
            raise UnregisteredVariable(f"{name} is not declared in config/environment.py; add it to VARIABLES there.")
        return self.values[name]

    @property
    def knobs(self) -> dict[str, object]:
        """The knobs the environment sets, by their name without the prefix (the rest keep their defaults)."""
        return {name.removeprefix(PREFIX): self.values[name] for name in sorted(self.given) if REGISTRY[name].knob}


def environment_read(environ_: Mapping[str, str]) -> Environment:
    """Each registered variable parsed by its own type; what fails is an error message, and its fallback stays."""
    result = Environment(values={}, given=set(), errors=[])
    for variable in VARIABLES:
        value = copy.deepcopy(variable.default)
        text = environ_.get(variable.name)
        if text is not None:
            result.given.add(variable.name)
            try:
                value = variable.kind.parse(text)
            except ValueError as error:
                result.errors.append(f"{variable.name}={text!r} is not {variable.kind.expected} ({error}).")
                value = copy.deepcopy(variable.on_error())
        result.values[variable.name] = value
    unknown = sorted(name for name in environ_ if name.startswith(PREFIX) and name not in REGISTRY)
    result.errors.extend(f"{name} is not a setting of this issuer (a typo?)." for name in unknown)
    return result


def dotenv_load() -> None:
    """A local `.env` beside manage.py (what `make run` writes) fills in what the environment leaves unset;
    containers take their settings from the environment alone, quietly."""
    path = BASE_DIR / ".env"
    if path.exists():
        environ.Env.read_env(path, overwrite=False)
