"""CSV export of a back-office list, with the filters and search the list shows.

- The rows are the changelist's own queryset (Django's ChangeList: the same filters, search, ordering and lookup
  allow-list, so a lookup the list refuses is a 400 here too), read as plain values with a server-side cursor
  (`iterator(chunk_size)`, in a transaction: see `streamed_rows`) and written as they come
  (`StreamingHttpResponse`): memory stays flat however many rows the list holds, and the first row leaves before
  the last is read.
- The columns are declared per admin (`csv_columns`), never derived from the model: nothing secret (an activation
  code below support, a license-key digest, a ciphertext) can slip in with a new field, and a column that names
  a digest, a ciphertext or a hash is a configuration error (`ImproperlyConfigured`, and a test reads every
  exporting admin).
- A text cell that a spreadsheet would read as a formula (= + - @, or a leading tab or carriage return) is
  prefixed with a quote: host names and versions come from instances, and an instance is not trusted.
"""

import csv
import datetime as dt
from collections.abc import Callable, Iterable, Iterator

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.core.paginator import Paginator
from django.db import connections, transaction
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.urls import path
from django.utils import timezone

from config.admin_base import REFUSED_LOOKUP_FIELDS

# Never a column: digests, ciphertexts and password hashes. The activation code is the one secret some roles see
# (support and up, as on the list): the admin that exports it leaves it out for the others (`get_csv_columns`).
NEVER_EXPORTED = REFUSED_LOOKUP_FIELDS - {"activation_code"}
# Rows fetched per round trip of the server-side cursor (the first fetch is the first row's wait).
EXPORT_CHUNK_ROWS = 500
# Lines per piece of the response: a few hundred kilobytes, not a socket write per row.
EXPORT_LINES_PER_PIECE = 1000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# A column: (header, field path) or (header, function of the row's values by field path).
Column = tuple[str, str | Callable[[dict], object]]


def csv_cell(value) -> object:
    """A value as a CSV cell: dates in ISO form, None as empty, text that a spreadsheet would run as a formula
    neutralised with a leading quote."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return f"'{value}"
    return value


class _Line:
    """A file-like object whose write returns what was written: csv.writer then yields lines, not a file."""

    def write(self, value: str) -> str:
        return value


def csv_lines(columns: list[Column], rows: Iterable[tuple], paths: list[str]) -> Iterator[str]:
    """The header, the first row, then the rows in pieces of EXPORT_LINES_PER_PIECE lines (one write to the socket
    each, not one per row)."""
    writer = csv.writer(_Line())
    yield writer.writerow([header for header, _ in columns])
    position = {path: index for index, path in enumerate(paths)}
    computed = any(not isinstance(source, str) for _, source in columns)
    piece, first = [], True  # the first row leaves alone, as soon as the query answers
    for values in rows:
        row = dict(zip(paths, values, strict=True)) if computed else None
        piece.append(
            writer.writerow(
                [
                    csv_cell(values[position[source]] if isinstance(source, str) else source(row))
                    for _, source in columns
                ]
            )
        )
        if len(piece) == EXPORT_LINES_PER_PIECE or first:
            yield "".join(piece)
            piece, first = [], False
    if piece:
        yield "".join(piece)


def refused_paths(columns: Iterable[Column]) -> list[str]:
    """The column paths that touch a field no export may show (digests, ciphertexts, hashes)."""
    return [
        source
        for _, source in columns
        if isinstance(source, str) and NEVER_EXPORTED.intersection(source.split(LOOKUP_SEP))
    ]


def streamed_rows(queryset) -> Iterator[tuple]:
    """The rows as the server-side cursor delivers them, inside a transaction: outside one (autocommit) Django
    declares the cursor WITH HOLD, and PostgreSQL then computes and stores the whole result before the first row
    (seconds at a million rows, and a temporary file of its size). One read-only snapshot: the file is consistent.
    On PostgreSQL the planner is told to start fast: JIT off (a whole table's cost crosses `jit_above_cost`, and
    compiling the plan cost 0.4 s before the first row at a million instances), and a plan for the first rows
    (`cursor_tuple_fraction`: the index in list order, not a parallel sort of the whole table, which took 1.3 s
    cold). The rows then come as fast as the CSV is written, which is the slower side anyway."""
    connection = connections[queryset.db]
    with transaction.atomic(using=queryset.db):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
                cursor.execute("SET LOCAL cursor_tuple_fraction = 0.001")
        yield from queryset.iterator(chunk_size=EXPORT_CHUNK_ROWS)


class UncountedPaginator(Paginator):
    """An export's ChangeList pages nothing: counting the rows (an EXPLAIN on a partitioned table, or a COUNT)
    would only delay the first row."""

    count = 0


class CsvExportAdmin(admin.ModelAdmin):
    """A changelist with an *Export CSV* link that exports the list as filtered. Declare `csv_columns`; override
    `get_csv_columns` where a role changes what may be exported; `csv_inputs` are field paths that computed
    columns read without being columns themselves."""

    csv_columns: tuple[Column, ...] = ()
    csv_inputs: tuple[str, ...] = ()
    change_list_template = "admin/export_change_list.html"

    def get_csv_columns(self, request) -> list[Column]:
        return list(self.csv_columns)

    def get_urls(self):
        opts = self.model._meta
        export = path(
            "export.csv",
            self.admin_site.admin_view(self.csv_export_view),
            name=f"{opts.app_label}_{opts.model_name}_export",
        )
        return [export, *super().get_urls()]

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        if getattr(request, "csv_export", False):
            return UncountedPaginator(queryset, per_page)
        return super().get_paginator(request, queryset, per_page, orphans, allow_empty_first_page)

    def csv_export_view(self, request):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        columns = self.get_csv_columns(request)
        if refused := refused_paths(columns):
            raise ImproperlyConfigured(f"{type(self).__name__} exports refused fields: {', '.join(refused)}")
        request.csv_export = True  # get_paginator: nothing to count
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest("These filters do not apply to this list.")
        paths = list(
            dict.fromkeys([source for _, source in columns if isinstance(source, str)] + list(self.csv_inputs))
        )
        rows = streamed_rows(changelist.queryset.values_list(*paths))
        response = StreamingHttpResponse(csv_lines(columns, rows, paths), content_type="text/csv; charset=utf-8")
        name = f"{self.model._meta.verbose_name_plural.replace(' ', '-')}-{timezone.now():%Y%m%dT%H%M%SZ}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["Cache-Control"] = "no-store"
        return response
