"""Schemathesis (pinned in requirements-dev.txt) generates requests from the admin API's own schema and calls the
WSGI app in-process with a superuser's token: no answer may be a 500, or a status, content type or body the schema
does not document. A few examples per operation keep the run short; tests/test_api_schema_statuses.py calls each
route's error paths by hand.

Two of schemathesis's checks are left out, by decision: `positive_data_acceptance` (a request the schema allows
must not be refused) and `negative_data_rejection` (one it forbids must be refused). The schema cannot say which
ids exist, so a well-formed body naming subscription 0 is rightly a 400; and DRF reads text fields leniently (a
number where text is expected is taken as its text), which the API keeps."""

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from knox.models import AuthToken

SCHEMA = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True)).include(
    path_regex="^/api/v1/admin/"
)
SCHEMA.app = get_wsgi_application()


@pytest.fixture
def in_the_test_transaction():
    """As Django's test client does: a request must not close the test's connection (and its transaction)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def token(db, activated, in_the_test_transaction):
    root = User.objects.create_superuser("root", "root@example.test", "pw-root-123456")
    return AuthToken.objects.create(root)[1]


@SCHEMA.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_generated_calls_answer_as_documented(case, token):
    case.call_and_validate(
        headers={"Authorization": f"Token {token}"},
        excluded_checks=[schemathesis.checks.positive_data_acceptance, schemathesis.checks.negative_data_rejection],
    )
