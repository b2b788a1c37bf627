"""The sync's hot statements are prepared on PostgreSQL (planned once per connection), and nothing else is."""

import datetime as dt

import pytest
from django.db import connection

from issuer.sync_state.store import sync_state_by_license_key
from issuer.tokens.services import service_access_token_sync
from tests.helpers import last_sync_set, postgres_only

pytestmark = pytest.mark.django_db


def prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE from_sql IS FALSE")
        return [row[0] for row in cursor.fetchall()]


def a_sync_that_reads_mints_and_records(license_key):
    """An uncached state (its inputs' read), a token minted (its record) and the last sync recorded (bookkeeping,
    due: the first sync)."""
    result = service_access_token_sync(sync_state_by_license_key(license_key), gitlab_version="17.11.0")
    assert result.token is not None
    return result


@postgres_only
def test_the_syncs_statements_are_prepared_once_per_connection(activated, settings):
    settings.DATABASE_PREPARED_STATEMENTS = True
    instance, key = activated
    assert connection.connection.prepare_threshold == 0, "the connection is made with the settings' OPTIONS"
    a_sync_that_reads_mints_and_records(key)
    prepared = prepared_statements()
    assert any("json_build_array" in text and "license_key_digest" in text for text in prepared), prepared
    assert any(text.startswith("WITH asynchronous") and "INSERT INTO" in text for text in prepared), prepared
    assert any(text.startswith("WITH asynchronous") and "UPDATE" in text for text in prepared), prepared
    hot = [text for text in prepared if text.startswith("WITH asynchronous") or "json_build_array" in text]
    assert hot == prepared, "Django's own queries (client-side binding) are never prepared"
    instance.refresh_from_db()
    assert instance.last_sync_at is not None and instance.last_sync_at > dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    # Again on the same connection: the same three statements, not three more.
    last_sync_set([instance], None)
    a_sync_that_reads_mints_and_records(key)
    assert sorted(prepared_statements()) == sorted(prepared)


@postgres_only
def test_switched_off_nothing_is_prepared_and_the_answer_is_the_same(activated, settings):
    settings.DATABASE_PREPARED_STATEMENTS = False
    _, key = activated
    before = prepared_statements()  # (a test before this one on the same connection may have prepared some)
    result = a_sync_that_reads_mints_and_records(key)
    assert prepared_statements() == before
    state = sync_state_by_license_key(key)
    assert state.newest is not None and state.newest.kid == result.kid
