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
