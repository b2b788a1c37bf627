"""The CI step that runs the suite with Python's clock moved (TEST_CLOCK_SHIFT_DAYS) really moves it."""

import datetime as dt

from time_machine import escape_hatch

from tests.conftest import CLOCK_SHIFT_DAYS


def test_python_clock_is_ahead_by_the_asked_shift():
    real = escape_hatch.datetime.datetime.now(dt.UTC) if escape_hatch.is_travelling() else dt.datetime.now(dt.UTC)
    ahead = dt.datetime.now(dt.UTC) - real
    assert abs(ahead - dt.timedelta(days=CLOCK_SHIFT_DAYS)) < dt.timedelta(minutes=5)
