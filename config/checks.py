"""Start-up checks for configuration: a missing secret outside DEBUG stops the process with a clear message."""

import ipaddress

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.security, deploy=False)
def required_secrets(app_configs=None, **kwargs):
    errors = []
    if not settings.DEBUG:
        if not settings.SECRET_KEY_CONFIGURED:
            errors.append(
                Error(
                    "SECRET_KEY is not set.",
                    hint="Set SECRET_KEY in the environment or in .env (`make run` writes one).",
                    id="config.E001",
                )
            )
        if not settings.KEY_ENCRYPTION_KEYS:
            errors.append(
                Error(
                    "KEY_ENCRYPTION_KEYS is not set: signing keys and stored tokens cannot be encrypted.",
                    hint="Set KEY_ENCRYPTION_KEYS to one or more comma-separated Fernet keys "
                    '(python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())").',
                    id="config.E002",
                )
            )
        if not settings.LICENSE_KEY_PEPPER:
            errors.append(
                Error(
                    "LICENSE_KEY_PEPPER is not set: license keys cannot be stored.",
                    hint="Set LICENSE_KEY_PEPPER to a long random string and never change it "
                    "(changing it invalidates every license key).",
                    id="config.E003",
                )
            )
    for position, key in enumerate(settings.KEY_ENCRYPTION_KEYS, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            errors.append(
                Error(
                    f"KEY_ENCRYPTION_KEYS entry {position} is not a valid Fernet key.",
                    hint="Each entry must be 32 url-safe base64-encoded bytes, as Fernet.generate_key() makes.",
                    id="config.E004",
                )
            )
    return errors


@register(deploy=False)
def audit_retention(app_configs=None, **kwargs):
    days = settings.ISSUER_AUDIT_RETENTION_DAYS
    if days is not None and days < 30:
        return [
            Error(
                f"ISSUER_AUDIT_RETENTION_DAYS is {days}; it must be at least 30 (no younger event is ever purged).",
                hint="Leave it unset to keep audit events forever.",
                id="config.E005",
            )
        ]
    return []


@register(deploy=False)
def metrics_networks(app_configs=None, **kwargs):
    errors = []
    for name in ("ISSUER_METRICS_ALLOWED_NETWORKS", "ISSUER_COLLECTOR_ALLOWED_NETWORKS"):
        errors += _not_networks(name, getattr(settings, name))
    return errors


def _not_networks(name: str, networks: list[str]) -> list[Error]:
    errors = []
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            errors.append(
                Error(
                    f"{name} has {network!r}, which is not a network.",
                    hint="Comma-separated addresses or CIDR networks, e.g. 127.0.0.1/8,10.0.0.0/8.",
                    id="config.E006",
                )
            )
    return errors


@register(deploy=False)
def environment_values(app_configs=None, **kwargs):
    """A variable that does not parse, or an ISSUER_* variable that nobody reads, stops start-up naming it."""
    return [
        Error(message, hint="docs/configuration.md lists every variable and its type.", id="config.E007")
        for message in settings.ENVIRONMENT_ERRORS
    ]


# The shortest LICENSE_KEY_PEPPER `check --deploy` accepts (`secrets.token_urlsafe(32)`, what `make run` writes, has 43
# characters), and values that appear in our examples, tests and benchmarks: public, so no secret.
PEPPER_MIN_LENGTH = 32
EXAMPLE_PEPPERS = frozenset(
    {
        "change-me",
        "changeme",
        "test-pepper",
        "pepper-for-the-test",
        "fleet-bench-pepper",
        "restore-test",
        "a-long-random-pepper-for-this-test-0123456789",
    }
)


@register(Tags.security, deploy=True)
def deploy_settings(app_configs=None, **kwargs):
    """`manage.py check --deploy`: a pepper an attacker could guess, and a Host header that is not checked."""
    problems = []
    pepper = settings.LICENSE_KEY_PEPPER
    guessable = len(pepper) < PEPPER_MIN_LENGTH or pepper.lower() in EXAMPLE_PEPPERS or len(set(pepper)) < 8
    if guessable and (pepper or settings.DEBUG):  # an empty one outside DEBUG is config.E003 already
        problems.append(
            Error(
                f"LICENSE_KEY_PEPPER is {len(pepper)} characters long or an example value: license keys stored "
                "under it could be brute-forced by whoever reads the database.",
                hint=f"Use at least {PEPPER_MIN_LENGTH} random characters "
                '(python -c "import secrets; print(secrets.token_urlsafe(32))"). Changing it invalidates every '
                "license key: see the runbook before changing a pepper in use.",
                id="config.E008",
            )
        )
    if "*" in settings.ALLOWED_HOSTS:
        problems.append(
            Warning(
                "ALLOWED_HOSTS contains '*': any Host header is accepted (Host-header poisoning of absolute URLs).",
                hint="List the issuer's public host name(s), e.g. ALLOWED_HOSTS=issuer.example.com.",
                id="config.W001",
            )
        )
    return problems


@register(Tags.security, deploy=False)
def people_middleware(app_configs=None, **kwargs):
    """Each middleware the pages need (sessions, CSRF, authentication, messages, X-Frame-Options, the CSP, the login
    lockout) is in MIDDLEWARE, as itself or its pages-only form (config/machine_doors.py): checked by class, where
    the checks of Django and axes that look for them by name are silenced for those forms."""
    from django.utils.module_loading import import_string

    from config.machine_doors import PEOPLE_ONLY_MIDDLEWARE

    present = [import_string(path) for path in settings.MIDDLEWARE]
    return [
        Error(
            f"{required.__module__}.{required.__name__} is not in MIDDLEWARE: pages would go without it.",
            hint=f"Name config.machine_doors.PagesOnly{required.__name__} there (it skips the machine doors only).",
            id="config.E009",
        )
        for required in PEOPLE_ONLY_MIDDLEWARE
        if not any(isinstance(entry, type) and issubclass(entry, required) for entry in present)
    ]
