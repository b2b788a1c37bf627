"""Django's PostgreSQL backend, whose per-request health check is skipped while the connection is proven.

Django's `CONN_HEALTH_CHECKS` sends a `SELECT 1` before the first query of every request: one more round trip for
each sync that reads or writes PostgreSQL (measured 2026-12-05: 7% of a fleet sync's and of a minting sync's CPU,
client and server). Here a connection last used less than `DATABASE_CHECK_IDLE_SECONDS` ago, by a request that
ended without closing it, is used at once; one idle longer is checked as Django checks it, and replaced when dead.
"Used" is the last cursor taken (a query's start); after a database error, Django's own check at the request's end
is the last use.

What that leaves exposed: a connection killed (a server restart, `pg_terminate_backend`, a pooler's reset) within
that second of its last use fails the next request's query once: the 503 with Retry-After of any database error
(`config.unavailable`), which GitLab retries, and the error closes the connection. A restart that takes longer is
unchanged: the requests made meanwhile failed anyway (closing their connections), and connections idle through it
are checked. `DATABASE_CHECK_IDLE_SECONDS=0` checks before every request, as Django does.
"""

import time

from django.conf import settings
from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    proven_until = 0.0  # monotonic time until which this connection needs no check
    used_at = None  # monotonic time a cursor was last taken, since the last `close_if_unusable_or_obsolete`

    def close_if_health_check_failed(self):
        """Before every cursor: Django's check, unless the connection is proven (which counts as this request's
        check)."""
        now = time.monotonic()
        if self.connection is not None and not self.health_check_done and now < self.proven_until:
            self.health_check_done = True
        else:
            super().close_if_health_check_failed()
        self.used_at = now

    def close_if_unusable_or_obsolete(self):
        """At a request's start and end (`close_old_connections`): the connection kept is proven until
        DATABASE_CHECK_IDLE_SECONDS after its last use in the request, or after Django's check of it following a
        database error; one closed is proven no more."""
        used_at, self.used_at = self.used_at, None
        erred = self.errors_occurred
        super().close_if_unusable_or_obsolete()
        if self.connection is None:
            self.proven_until = 0.0
        elif erred:  # still open: Django's `is_usable()` has just answered for it
            self.proven_until = time.monotonic() + settings.DATABASE_CHECK_IDLE_SECONDS
        elif used_at is not None:
            self.proven_until = used_at + settings.DATABASE_CHECK_IDLE_SECONDS
