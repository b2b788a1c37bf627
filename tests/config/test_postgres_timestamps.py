"""Timestamps read through `config.postgres.timestamps_parsed_in_c` are what Django's own loader returns."""

import datetime as dt

import pytest
from django.db import connection, transaction

from tests.helpers import postgres_only

pytestmark = pytest.mark.django_db


def _read(expression: str, *, djangos_loader: bool = False, date_style: str = "ISO, MDY"):
    """The value read, or the class of the error raised."""
    from django.db.backends.postgresql.psycopg_any import register_tzloader

    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT set_config('DateStyle', %s, true)", [date_style])
            if djangos_loader:
                register_tzloader(connection.timezone, cursor.cursor)
            cursor.execute(f"SELECT {expression}::timestamptz")  # noqa: S608 (literals of this test)
            return cursor.fetchone()[0]
    except Exception as error:  # noqa: BLE001 (the error is the answer compared)
        return type(error)


LITERALS = [
    "'2026-11-29 18:29:43.123456+00'",
    "'2026-11-29 18:29:43.5+05:30'",
    "'2026-01-01 00:00:00-08'",
    "'1900-06-01 12:00:00+00'",
    "'0001-01-01 00:00:00+00'",
    "'9999-12-31 23:59:59.999999+00'",
    "'0044-03-15 12:00:00+00 BC'",
    "'infinity'",
    "'-infinity'",
]


@postgres_only
@pytest.mark.parametrize("literal", LITERALS)
@pytest.mark.parametrize("date_style", ["ISO, MDY", "SQL, DMY", "Postgres, MDY", "German"])
def test_every_timestamp_reads_as_djangos_loader_reads_it(literal, date_style):
    ours = _read(literal, date_style=date_style)
    djangos = _read(literal, djangos_loader=True, date_style=date_style)
    assert ours == djangos
    if isinstance(ours, dt.datetime):
        assert ours.tzinfo is dt.UTC


@postgres_only
def test_iso_timestamps_are_aware_utc_datetimes():
    assert _read("'2026-11-29 18:29:43.5+05:30'") == dt.datetime(2026, 11, 29, 12, 59, 43, 500000, tzinfo=dt.UTC)


@postgres_only
def test_the_fast_loader_is_the_one_in_use():
    with connection.cursor() as cursor:
        loader = cursor.cursor.adapters.get_loader(1184, 0)  # timestamptz, text format
    assert loader.__name__ == "IsoTimestamptzLoader"
