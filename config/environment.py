"""Every `ISSUER_*` environment variable in one registry: its name, its type and its default.

`config/settings.py` reads only the names listed here, each with its own type: the issuer's knobs (integers)
go to `settings.ISSUER`, which `issuer/conf.py` turns into the one settings object; the rest are Django settings
of the same name. A value that does not parse, or an `ISSUER_*` name nobody reads (a typo would otherwise go
unnoticed), never crashes the import: it is collected and reported by the `config.E007` start-up check, which
stops `manage.py`, gunicorn and Celery with a message naming the variable.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass

PREFIX = "ISSUER_"


def _integer(text: str) -> int:
    return int(text.strip())


def _optional_integer(text: str) -> int | None:
    return int(text.strip()) if text.strip() else None


def _text(text: str) -> str:
    return text.strip()


def _list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


@dataclass(frozen=True)
class Variable:
    name: str  # without the ISSUER_ prefix
    parse: Callable[[str], object]
    default: object
    knob: bool = True  # a knob of `settings.ISSUER`; otherwise the Django setting ISSUER_<name>
    expected: str = "an integer"


VARIABLES = [
    Variable("URL", _text, "", knob=False, expected="a URL"),  # default: http://127.0.0.1:$PORT (settings.py)
    # Each entry is checked as a network by config.E006.
    Variable("METRICS_ALLOWED_NETWORKS", _list, ["127.0.0.1/8", "::1/128"], knob=False, expected="a list"),
    Variable("METRICS_TOKEN", _text, "", knob=False, expected="a string"),
    # Who may post billable usage events to the Snowplow collector (it takes no credentials). Checked by E006 too.
    Variable("COLLECTOR_ALLOWED_NETWORKS", _list, ["127.0.0.1/8", "::1/128"], knob=False, expected="a list"),
    Variable("AUDIT_RETENTION_DAYS", _optional_integer, None, knob=False, expected="a number of days, or empty"),
    Variable("TOKEN_TTL_SECONDS", _integer, 3 * 86400),
    Variable("NBF_BACKDATE_SECONDS", _integer, 5),
    Variable("PUBLISH_LEAD_SECONDS", _integer, 48 * 3600),
    Variable("VALIDATOR_CACHE_SECONDS", _integer, 86400),
    Variable("CLOCK_SKEW_SECONDS", _integer, 300),
    Variable("ROTATION_PERIOD_SECONDS", _integer, 90 * 86400),
    Variable("REFRESH_THRESHOLD_SECONDS", _integer, 60 * 3600),
    Variable("JWKS_MAX_AGE_SECONDS", _integer, 3600),
    Variable("RSA_KEY_SIZE", _integer, 2048),
    Variable("SYNC_THROTTLE_PER_MINUTE", _integer, 30),
    Variable("REFRESH_CHUNK_SIZE", _integer, 1000),
    Variable("SYNC_STATE_CACHE_SECONDS", _integer, 900),
    Variable("TOKEN_RECORD_RETENTION_DAYS", _integer, 400),
    Variable("VALIDATOR_FORGET_DAYS", _integer, 7),
]
REGISTRY = {variable.name: variable for variable in VARIABLES}
KNOB_DEFAULTS = {variable.name: variable.default for variable in VARIABLES if variable.knob}


@dataclass
class IssuerEnvironment:
    settings: dict[str, object]  # Django settings, by their full ISSUER_* name
    knobs: dict[str, object]  # the knobs the environment sets (the rest keep their defaults)
    errors: list[str]


def issuer_environment_read(environ: Mapping[str, str]) -> IssuerEnvironment:
    """Each registered variable parsed by its own type; what fails is an error message, and its default stays."""
    result = IssuerEnvironment(settings={}, knobs={}, errors=[])
    for variable in VARIABLES:
        full_name = PREFIX + variable.name
        value = variable.default
        if full_name in environ:
            try:
                value = variable.parse(environ[full_name])
            except ValueError as error:
                result.errors.append(f"{full_name}={environ[full_name]!r} is not {variable.expected} ({error}).")
                value = variable.default
            if variable.knob:
                result.knobs[variable.name] = value
        if not variable.knob:
            result.settings[full_name] = value
    unknown = sorted(name for name in environ if name.startswith(PREFIX) and name.removeprefix(PREFIX) not in REGISTRY)
    result.errors.extend(f"{name} is not a setting of this issuer (a typo?)." for name in unknown)
    return result
