import io
import json
import logging

import pytest

from config.logging import RedactSecretsFilter, RequestIdFilter, redact


@pytest.mark.parametrize(
    "secret",
    [
        "Authorization: Bearer cdl_abcdefghijklmnopqrstuvwxyz012345",
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLWJ5dGVz",
        "cdl_Zk3Q1rVv3u8Hk1yT6xqgS3bcd5XYz0a1b2c3d4e5f6g",
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----",
        '{"licenseKey": "whatever-secret-value"}',
        "gAAAAABnZ3x1c2VjcmV0LWNpcGhlcnRleHQtdGhhdC1pcy1sb25n",
    ],
)
def test_redact_removes_every_kind_of_secret(secret):
    cleaned = redact(f"before {secret} after")
    assert "REDACTED" in cleaned
    for fragment in (
        "abcdefghijklmnop",
        "c2lnbmF0dXJl",
        "Zk3Q1rVv3u8",
        "MIIEvQIBADAN",
        "whatever-secret-value",
        "c2VjcmV0LWNpcGhlcnRleHQ",
    ):
        assert fragment not in cleaned
    assert cleaned.startswith("before ") and cleaned.endswith("after")


def test_redact_leaves_ordinary_text_alone():
    assert redact("instance 1234 synced 17.11.0 in 3 ms") == "instance 1234 synced 17.11.0 in 3 ms"


def _capture():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactSecretsFilter())
    from pythonjsonlogger.json import JsonFormatter

    handler.setFormatter(JsonFormatter("%(levelname)s %(message)s %(request_id)s"))
    logger = logging.getLogger("tests.redaction")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_filter_redacts_args_extras_and_tracebacks():
    logger, stream = _capture()
    license_key = "cdl_SuperSecretLicenseKeyValue123456"
    logger.info("header %s", f"Bearer {license_key}", extra={"note": f"key={license_key}"})
    try:
        raise ValueError(f"bad key {license_key}")
    except ValueError:
        logger.exception("failed")
    output = stream.getvalue()
    assert license_key not in output
    lines = [json.loads(line) for line in output.splitlines()]
    assert lines[0]["request_id"] == "-"
    assert "REDACTED" in lines[0]["message"]


@pytest.mark.django_db
def test_request_id_is_echoed_and_generated(client):
    assert client.get("/healthz", HTTP_X_REQUEST_ID="abc-123")["X-Request-Id"] == "abc-123"
    generated = client.get("/healthz", HTTP_X_REQUEST_ID="bad id with spaces")["X-Request-Id"]
    assert len(generated) == 32 and " " not in generated


def _logging_restore() -> None:
    """The project's logging configuration as Django set it up; pytest's own capturing handlers on the root logger
    are kept."""
    import logging.config

    from django.conf import settings

    root = logging.getLogger()
    pytests = [handler for handler in root.handlers if type(handler).__module__ == "_pytest.logging"]
    logging.config.dictConfig(settings.LOGGING)
    for handler in pytests:
        root.addHandler(handler)


def _root_configuration():
    root = logging.getLogger()
    own = [handler for handler in root.handlers if type(handler).__module__ != "_pytest.logging"]
    return root.level, [(type(handler), [type(f) for f in handler.filters]) for handler in own]


@pytest.fixture
def logging_restored():
    """For a test that reconfigures logging: restored after it, so the next test on this worker logs as any other."""
    from config.celery import app

    already_setup = app.log.already_setup
    yield
    _logging_restore()
    app.log.already_setup = already_setup


def test_the_restore_undoes_the_celery_workers_setup(logging_restored):
    from config.celery import app

    before = _root_configuration()
    app.log.already_setup = False
    app.log.setup_logging_subsystem(loglevel="DEBUG")
    assert _root_configuration() != before, "the worker's setup reconfigured the root logger"
    _logging_restore()
    assert _root_configuration() == before


@pytest.fixture
def configured_output(logging_restored):
    """The project's real logging configuration (Django's and gunicorn's loggers), writing to a buffer."""
    import logging.config

    from config.logging import logging_config

    gunicorn = {"handlers": ["console"], "level": "INFO", "propagate": False}
    logging.config.dictConfig(
        logging_config(root_level="INFO", loggers={"gunicorn.error": gunicorn, "gunicorn.access": gunicorn})
    )
    stream = io.StringIO()
    for handler in logging.getLogger().handlers + logging.getLogger("gunicorn.access").handlers:
        handler.setStream(stream)
    yield stream


LICENSE_KEY = "cdl_SuperSecretLicenseKeyValue123456"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLWJ5dGVz"


@pytest.mark.django_db
def test_a_405_on_graphql_logs_no_key_and_no_token(client, configured_output):
    response = client.get(f"/graphql?licenseKey={LICENSE_KEY}&token={JWT}")
    assert response.status_code == 405
    output = configured_output.getvalue()
    assert "Method Not Allowed" in output, "the warning was logged"
    assert LICENSE_KEY not in output and "c2lnbmF0dXJl" not in output


@pytest.mark.parametrize(
    "logger_name",
    [
        "django.request",
        "django.server",
        "django.security.csrf",
        "gunicorn.error",
        "gunicorn.access",
        "celery.app.trace",
    ],
)
def test_every_logger_redacts_objects_and_arguments(configured_output, logger_name):
    class Carrier:
        def __str__(self):
            return f"<WSGIRequest: GET '/graphql?licenseKey={LICENSE_KEY}'>"

    logging.getLogger(logger_name).warning(
        "%(r)s", {"r": f"GET /x?token={JWT} HTTP/1.1"}, extra={"request": Carrier(), "status_code": 405}
    )
    output = configured_output.getvalue()
    assert output and LICENSE_KEY not in output and "c2lnbmF0dXJl" not in output
    assert json.loads(output.splitlines()[-1])["status_code"] == 405, "plain values are left as they are"


def test_celery_workers_log_through_the_redacting_configuration(logging_restored):
    from config.celery import app
    from config.logging import RedactSecretsFilter

    app.log.already_setup = False  # as in a fresh worker process
    app.log.setup_logging_subsystem(loglevel="INFO")
    filters = [f for handler in logging.getLogger().handlers for f in handler.filters]
    assert any(isinstance(f, RedactSecretsFilter) for f in filters)
