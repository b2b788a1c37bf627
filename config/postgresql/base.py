"""Django's PostgreSQL backend, whose per-request health check is skipped while the connection is proven.

Django's `CONN_HEALTH_CHECKS` sends a `SELECT 1` before the first query of every request: one more round trip for
each sync that reads or writes PostgreSQL (measured 2026-12-05: 7% of a fleet sync's and of a minting sync's CPU,
client and server). Here a connection that served a request without a database error within the last
`DATABASE_CHECK_IDLE_SECONDS` is used at once; one idle longer is checked as Django checks it, and replaced when dead.

What that leaves exposed: a connection killed (a server restart, `pg_terminate_backend`, a pooler's reset) within
that second of its last request fails the next request's query once: the 503 with Retry-After of any database
error (`config.unavailable`), which GitLab retries, and the error closes the connection. A restart that takes
longer is unchanged: the requests made meanwhile failed anyway (closing their connections), and connections idle
through it are checked. `DATABASE_CHECK_IDLE_SECONDS=0` checks before every request, as Django does.
"""

import time

from django.conf import settings
from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    proven_until = 0.0  # monotonic time until which this connection needs no check (set when a request ends well)

    def close_if_health_check_failed(self):
        if self.connection is not None and not self.health_check_done and time.monotonic() < self.proven_until:
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def close_if_unusable_or_obsolete(self):
        """At a request's start and end (`close_old_connections`): a connection the request used without a
        database error is proven for the next DATABASE_CHECK_IDLE_SECONDS; an error withdraws the proof."""
        used, erred = self.connection is not None and self.health_check_done, self.errors_occurred
        super().close_if_unusable_or_obsolete()
        if self.connection is None or erred:
            self.proven_until = 0.0
        elif used:
            self.proven_until = time.monotonic() + settings.DATABASE_CHECK_IDLE_SECONDS
