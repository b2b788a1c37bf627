"""Instances' last syncs written in batches (PostgreSQL, `SYNC_RECORD_BATCH_SECONDS` > 0).

The hourly sync of an instance that sends the same headers changes only its last sync. Written by each sync, that
is a round trip and a statement for each of a million hourly syncs: the fleet sync's second PostgreSQL statement,
13–15% of its CPU (issue 29). Here each process keeps the last syncs it saw, newest per instance, and one thread of
its own writes them every `SYNC_RECORD_BATCH_SECONDS` (or sooner, once BATCH_ROWS are waiting), in one statement
that moves each one forward only.

What that trades, written down (docs/performance.md, docs/operations.md):
- A last sync reaches the database up to `SYNC_RECORD_BATCH_SECONDS` late (default 1 s). It is bookkeeping: the
  token, the scopes, the instance's headers and refusals are written by the sync itself, as before.
- A process killed without its exit (SIGKILL, out of memory) loses the last syncs of its last second; a graceful
  exit (gunicorn's restart, a deploy) writes them first. A lost one only shows an older last sync until the
  instance's next sync.
- With the database away the batch is kept (at most MAX_PENDING instances a process; beyond, a sync writes its
  own, as it does when no writer thread can be started) and written when it is back; the writer backs off meanwhile.
- Each web process holds one more database connection, the writer's (size `max_connections` for it).

SQLite (the embedded default) and `SYNC_RECORD_BATCH_SECONDS=0` write each last sync with its sync. So does the test
suite (config/test_settings.py), whose tests run in a transaction that another thread cannot see; the batch itself
is tested on its own (tests/subscriptions/test_last_sync_batch.py).
"""

import atexit
import datetime as dt
import logging
import os
import threading
from functools import cache

from django.conf import settings
from django.db import IntegrityError, close_old_connections, connection, connections
from prometheus_client import Counter

from audit.services import not_audited
from config.postgres import prepared_cursor
from subscriptions.models import Instance, InstanceLastSync

logger = logging.getLogger(__name__)

BATCH_ROWS = 1_000  # the writer is woken early once this many instances wait
MAX_PENDING = 100_000  # per process, while the database is away: ~20 MB; beyond, a sync writes its own
MAX_BACKOFF_SECONDS = 60  # after failed writes the writer waits longer each time, up to this

last_syncs_batched = Counter(
    "issuer_last_syncs_batched_total",
    "Instances' last syncs in the batch: written (made or moved forward), refused (the sync wrote its own), failed "
    "(a write that failed; kept for the next), dropped (could not be kept after a failed write)",
    ["result"],
)


@not_audited("writes nothing: whether this process batches last syncs")
def last_sync_batching() -> bool:
    """Whether this process batches last syncs: PostgreSQL and SYNC_RECORD_BATCH_SECONDS > 0."""
    return settings.SYNC_RECORD_BATCH_SECONDS > 0 and connection.vendor == "postgresql"


class LastSyncBatch:
    """The last syncs a process saw and has not written yet, newest per instance, and the thread that writes them:
    started by the first last sync a process keeps, again should it have ended (a forked child starts afresh: its
    parent writes its own)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Starts afresh, nothing waiting and no writer (a writer already running ends at its next turn). After a
        fork: a lock or a thread of the parent is not the child's, nor what the parent is to write."""
        previous = getattr(self, "_stop", None)
        if previous is not None:
            previous.set()
            self._wake.set()
        self._lock = threading.Lock()
        self._pending: dict[int, dt.datetime] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None

    def keep(self, instance_id: int, at: dt.datetime) -> bool:
        """Keeps a last sync for the next write (the newer one when the instance already waits). False when it
        cannot (MAX_PENDING wait, or no writer can be started): the sync then writes its own."""
        with self._lock:
            kept = self._pending.get(instance_id)
            if (kept is None and len(self._pending) >= MAX_PENDING) or not self._writer_running():
                last_syncs_batched.labels(result="refused").inc()
                return False
            if kept is None or kept < at:
                self._pending[instance_id] = at
            full = len(self._pending) >= BATCH_ROWS
        if full:
            self._wake.set()
        return True

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def write(self) -> int:
        """Writes what waits, in one statement: how many last syncs it made or moved forward. Should the write fail,
        what waited is kept for the next (within MAX_PENDING) and the error raised."""
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return 0
        try:
            written = last_syncs_write(batch)
        except Exception:
            self._put_back(batch)
            raise
        last_syncs_batched.labels(result="written").inc(written)
        return written

    def write_at_exit(self) -> None:
        """A graceful exit (gunicorn's worker restart, a deploy) stops the writer, lets a write it is making finish,
        then writes what waits."""
        self._stop.set()
        self._wake.set()
        writer = self._writer
        if writer is not None and writer is not threading.current_thread():
            writer.join(timeout=10)
        try:
            self.write()
        except Exception:  # exiting: nothing left to do but say so
            logger.exception("the last syncs could not be written at exit")

    def _writer_running(self) -> bool:
        """Starts the writer where none runs (called with the lock held); False if no thread can be started."""
        if self._writer is not None and self._writer.is_alive():
            return True
        if self._stop.is_set():  # exiting: the exit's own write takes what waits
            return True
        writer = threading.Thread(target=self._write_in_turns, args=(self._wake, self._stop), daemon=True)
        writer.name = "last-sync-batch"
        try:
            writer.start()
        except RuntimeError:  # no thread to be had (a container's process limit): the syncs write their own
            logger.warning("the last syncs' writer cannot start; each sync writes its own")
            return False
        self._writer = writer
        return True

    def _put_back(self, batch: dict[int, dt.datetime]) -> None:
        last_syncs_batched.labels(result="failed").inc(len(batch))
        with self._lock:
            for instance_id, at in batch.items():
                kept = self._pending.get(instance_id)
                if kept is None and len(self._pending) >= MAX_PENDING:
                    last_syncs_batched.labels(result="dropped").inc()
                elif kept is None or kept < at:
                    self._pending[instance_id] = at

    def _write_in_turns(self, wake: threading.Event, stop: threading.Event) -> None:
        """Every SYNC_RECORD_BATCH_SECONDS, or when BATCH_ROWS wait; after a failed write it waits twice as long
        each time (up to MAX_BACKOFF_SECONDS), deaf to wake-ups, so a database that is away is not hammered."""
        seconds = max(settings.SYNC_RECORD_BATCH_SECONDS, 1)
        failures = 0
        try:
            while not stop.is_set():
                if failures:
                    stop.wait(min(seconds * 2**failures, MAX_BACKOFF_SECONDS))
                else:
                    wake.wait(seconds)
                wake.clear()
                if stop.is_set():
                    return
                try:
                    close_old_connections()  # as a request starts: a connection past its age, or broken, is replaced
                    self.write()
                    failures = 0
                except Exception:  # the writer outlives any one failure; what waited is written at a later turn
                    failures += 1
                    if failures == 1 or failures % 10 == 0:
                        logger.exception("the last syncs could not be written; kept for a later turn")
        finally:
            connections.close_all()  # this thread's own


last_sync_batch = LastSyncBatch()
atexit.register(last_sync_batch.write_at_exit)
os.register_at_fork(after_in_child=last_sync_batch.reset)


@not_audited("what an instance reports about itself: its last sync, no one's decision")
def last_syncs_write(batch: dict[int, dt.datetime]) -> int:
    """Each instance's last sync made, or moved forward (never back), in one statement that commits without waiting
    for the write-ahead log; returns how many rows it made or moved. Instances deleted before it are skipped (the
    join); one deleted while it runs fails it (the foreign key), and it is run once more, when the join no longer
    finds that instance (autocommit: a new snapshot)."""
    ids = sorted(batch)  # the same order in every process: two writers lock rows in one order, never in a cycle
    parameters = [ids, [batch[instance_id] for instance_id in ids]]
    try:
        with prepared_cursor() as cursor:
            cursor.execute(_batch_statement(), parameters)
            return cursor.rowcount
    except IntegrityError:
        with prepared_cursor() as cursor:
            cursor.execute(_batch_statement(), parameters)
            return cursor.rowcount


@cache
def _batch_statement() -> str:
    quote = connection.ops.quote_name
    table, instances = quote(InstanceLastSync._meta.db_table), quote(Instance._meta.db_table)
    return (  # the models' own names; the values are parameters
        "WITH asynchronous AS (SELECT set_config('synchronous_commit', 'off', true)) "  # noqa: S608
        f"INSERT INTO {table} (instance_id, at) "
        "SELECT batch.instance_id, batch.at FROM unnest(%s::bigint[], %s::timestamptz[]) AS batch(instance_id, at) "
        f"JOIN {instances} i ON i.id = batch.instance_id CROSS JOIN asynchronous ORDER BY batch.instance_id "
        f"ON CONFLICT (instance_id) DO UPDATE SET at = EXCLUDED.at WHERE {table}.at < EXCLUDED.at"
    )
