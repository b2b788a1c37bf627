"""The calendar of a term: one rule for "a year later", shared by every door that defaults an expiry."""

import datetime as dt


def one_year_after(day: dt.date) -> dt.date:
    """The same day a year later; from 29 February that is 28 February (the term never runs into March)."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February, and the next year has none
        return day.replace(year=day.year + 1, day=28)
