"""Logs with a request id, and a filter that keeps secrets out of every log line: JSON lines for machines (a
container, a file, a pipe), readable lines in a terminal (LOG_FORMAT, `log_format_choose`)."""

import contextvars
import logging
import re
import sys
import uuid
from collections.abc import Mapping

request_id_var = contextvars.ContextVar("request_id", default="-")

# What must never reach a log: bearer credentials, JWTs, our license keys and activation codes, Fernet tokens and PEM
# blocks.
_SECRET_PATTERNS = [
    (re.compile(r"-----BEGIN [A-Z ]+-----.*?-----END [A-Z ]+-----", re.DOTALL), "[REDACTED PEM]"),
    (re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(bearer|basic|token)?\s*[^\s'\",}]+"), r"\1[REDACTED]"),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"), "Bearer [REDACTED]"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "[REDACTED JWT]"),
    (re.compile(r"\bcdl_[A-Za-z0-9_-]{8,}"), "[REDACTED LICENSE KEY]"),
    (re.compile(r"\bgAAAAA[A-Za-z0-9_=-]{20,}"), "[REDACTED CIPHERTEXT]"),
    # An activation code (subscriptions.models: 24 characters of ACTIVATION_CODE_ALPHABET), as support types it into a
    # search: any case, groups joined by dashes.
    (re.compile(r"(?i)(?<![A-Za-z0-9-])(?:[2-9A-HJKMNP-Z]-?){23}[2-9A-HJKMNP-Z](?![A-Za-z0-9-])"), "[REDACTED CODE]"),
    (
        re.compile(
            r"(?i)(['\"]?(?:license_?key|licenseKey|token|private_key|password)['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+"
        ),
        r"\1[REDACTED]",
    ),
]


LOG_FORMATS = ("json", "text")


def log_format_choose(setting: str, stream=None) -> str:
    """LOG_FORMAT (checked by config/environment.py): `json`, `text`, or `auto`, the default: readable text when the
    logs go to a terminal (`make run`, a shell), JSON lines everywhere else (containers, systemd, files), where a
    collector parses them."""
    setting = (setting or "auto").strip().lower()
    if setting in LOG_FORMATS:
        return setting
    stream = sys.stderr if stream is None else stream
    return "text" if getattr(stream, "isatty", lambda: False)() else "json"


def logging_config(*, log_format: str = "json", root_level: str | None = None, loggers: dict | None = None) -> dict:
    """The one logging configuration (request id, secrets redacted; JSON lines or readable text), for Django's
    LOGGING and for gunicorn's `logconfig_dict`."""
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "redact_secrets": {"()": "config.logging.RedactSecretsFilter"},
            "request_id": {"()": "config.logging.RequestIdFilter"},
            "skip_static": {"()": "config.logging.SkipStaticFilter"},
        },
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            },
            "text": {"()": "config.logging.ReadableFormatter"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["request_id", "redact_secrets"],
            },
        },
        # Django's own defaults log `django` and `django.server` through unfiltered handlers: route them here.
        "loggers": {
            "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
            **(loggers or {}),
        },
    }
    if root_level:
        config["root"] = {"handlers": ["console"], "level": root_level}
    return config


# What a LogRecord carries by itself; anything else was passed as `extra` and is shown after the message.
_RECORD_ATTRIBUTES = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "request_id"}


class ReadableFormatter(logging.Formatter):
    """`2026-12-05 07:32:10 INFO  issuer.tasks [3f2a…] signing key policy acted actions=[...]`: one line a person
    reads, with the request id and the `extra` fields the JSON lines carry."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)-5s %(name)s [%(request_id)s] %(message)s", "%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = " ".join(
            f"{key}={value}" for key, value in vars(record).items() if key not in _RECORD_ATTRIBUTES and key[0] != "_"
        )
        if not extras:
            return line
        first, newline, rest = line.partition("\n")
        return f"{first} {extras}{newline}{rest}"


class SkipStaticFilter(logging.Filter):
    """gunicorn's access lines for static files (the back office's CSS and scripts, hashed and cached by browsers)
    say nothing an operator needs: dropped, so the requests that matter stand out."""

    def filter(self, record: logging.LogRecord) -> bool:
        atoms = record.args if isinstance(record.args, Mapping) else {}
        return not str(atoms.get("U", "")).startswith("/static/")


# Secrets this process knows by value (the PKCS#11 PIN), which no pattern could recognise.
_secret_values: set[str] = set()


def secret_value_register(value: str) -> None:
    """`value` is replaced wherever a log line holds it, from now on in this process."""
    if value:
        _secret_values.add(value)


def redact(text: str) -> str:
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    for value in _secret_values:
        text = text.replace(value, "[REDACTED]")
    return text


_PLAIN = (int, float, bool, type(None))


def _text_of(value) -> str:
    try:
        return str(value)
    except Exception:  # an object that cannot say what it is holds nothing we could leak
        return ""


class RedactSecretsFilter(logging.Filter):
    """Rewrites the rendered message, any exception text, and every other attribute whose text holds a secret
    (strings, and objects such as Django's `request`, whose text carries the query string) with secrets replaced."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info:
            formatted = logging.Formatter().formatException(record.exc_info)
            record.exc_info, record.exc_text = None, redact(formatted)
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        for key, value in list(vars(record).items()):
            if key in ("msg", "args", "exc_text", "exc_info") or key.startswith("_") or isinstance(value, _PLAIN):
                continue
            text = value if isinstance(value, str) else _text_of(value)
            cleaned = redact(text)
            if cleaned != text:  # an object whose text holds a secret (Django's `request`) becomes that text
                setattr(record, key, cleaned)
        return True


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class RequestIdMiddleware:
    """Takes `X-Request-Id` from the proxy (or makes one), logs it on every line and echoes it back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-Id", "")
        request_id = incoming if re.fullmatch(r"[A-Za-z0-9._-]{1,64}", incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-Id"] = request_id
        return response
