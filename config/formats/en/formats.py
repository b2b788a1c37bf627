"""Dates the same way on every page, ours and Django admin's (change lists, history, audit): `2026-12-05 07:32 UTC`,
ISO order, 24-hour clock, the zone named (every time is stored and shown in UTC). Django's English locale would say
"Dec. 5, 2026, 7:32 a.m."; FORMAT_MODULE_PATH puts this module first."""

DATE_FORMAT = SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i"
DATETIME_FORMAT = SHORT_DATETIME_FORMAT = r"Y-m-d H:i \U\T\C"
MONTH_DAY_FORMAT = "m-d"
YEAR_MONTH_FORMAT = "F Y"
