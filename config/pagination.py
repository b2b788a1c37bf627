"""Counting what a page lists costs the page, not the fleet: above a threshold, the count shown is PostgreSQL's
planner estimate (EXPLAIN, no rows read) instead of COUNT(*) over millions of rows."""

import json

from django.core.exceptions import EmptyResultSet
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property
from rest_framework.pagination import PageNumberPagination

# Below this many rows (as the planner estimates) the exact count is cheap enough to take.
EXACT_COUNT_BELOW = 10_000


def planner_estimate(queryset: QuerySet) -> int | None:
    """The number of rows PostgreSQL expects `queryset` to return, or None on another database."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    try:
        sql, params = queryset.order_by().query.sql_with_params()
    except EmptyResultSet:  # a filter that can match nothing (e.g. a search of no known shape)
        return 0
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])


class EstimatedCountPaginator(Paginator):
    """Django's paginator, with `count` estimated above EXACT_COUNT_BELOW (`estimated` says when it is)."""

    estimated = False

    @cached_property
    def count(self):
        if isinstance(self.object_list, QuerySet):
            estimate = planner_estimate(self.object_list)
            if estimate is not None and estimate >= EXACT_COUNT_BELOW:
                self.estimated = True
                return estimate
        return super().count


class EstimatedCountPagination(PageNumberPagination):
    """The admin API's pages: `count` is exact below EXACT_COUNT_BELOW rows and PostgreSQL's estimate above."""

    django_paginator_class = EstimatedCountPaginator
