"""`manage.py audit_export --since 2026-01-01 [--until 2026-02-01] [--format jsonl|csv]`: the audit trail of a time
range on stdout, oldest first; `--until` defaults to now. Streamed (a server-side cursor on PostgreSQL), so memory
stays flat however many events the range holds."""

import csv
import datetime as dt
import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from audit.selectors import audit_event_data, audit_events_filtered

CHUNK = 2000


def _moment(text: str, option: str) -> dt.datetime:
    """An ISO date (midnight UTC) or datetime (UTC when it names no zone)."""
    moment = parse_datetime(text)
    if moment is None:
        day = parse_date(text)
        if day is None:
            raise CommandError(f"{option} {text!r} is not an ISO date or date-time (2026-01-31 or 2026-01-31T12:00Z).")
        moment = dt.datetime.combine(day, dt.time())
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=dt.UTC)


class Command(BaseCommand):
    help = "Exports audit events of a time range [since, until) as JSON lines or CSV, oldest first."

    def add_arguments(self, parser):
        parser.add_argument("--since", required=True, help="inclusive; ISO date or date-time")
        parser.add_argument("--until", help="exclusive; ISO date or date-time (default: now)")
        parser.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")

    def handle(self, *args, since, until, format, **options):
        since = _moment(since, "--since")
        until = _moment(until, "--until") if until else timezone.now()
        if since >= until:
            raise CommandError("--since must be before --until.")
        events = audit_events_filtered(since=since, until=until).order_by("at", "id").iterator(chunk_size=CHUNK)
        rows = (audit_event_data(event) for event in events)
        if format == "csv":
            self._csv(rows)
            return
        for row in rows:
            self.stdout.write(json.dumps(row, ensure_ascii=False, sort_keys=True))

    def _csv(self, rows):
        writer = None
        for row in rows:
            row = {**row, "changes": json.dumps(row["changes"], sort_keys=True)}
            if writer is None:
                writer = csv.DictWriter(self.stdout, fieldnames=list(row))
                writer.writeheader()
            writer.writerow(row)
