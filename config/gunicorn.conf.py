"""gunicorn settings: log lines with secrets redacted, like the application's own (JSON, or readable text in a
terminal: LOG_FORMAT), access lines with the request id and without static files.

Used by `make run`, the Dockerfile and compose (`gunicorn -c config/gunicorn.conf.py config.wsgi`); the bind
address comes from the command line, the worker count from WEB_CONCURRENCY (gunicorn's own variable) and each
worker's threads from WEB_THREADS (both declared in `config/environment.py` and read, like the settings, from the
environment or `.env`).
"""

import os

from gunicorn.http import wsgi

from config.environment import dotenv_load, environment_read
from config.logging import log_format_choose, logging_config

dotenv_load()
# A value that does not parse leaves the default here; the app's start-up check (config.E007) then refuses it.
_environment = environment_read(os.environ)
workers = _environment["WEB_CONCURRENCY"]
# Threaded workers: measured against sync workers on the sync hot path, 2-2.5x the warm syncs/s at 2 and 8
# connections (docs/performance.md). Threads of a worker share its process state (each its own database connection).
worker_class = "gthread"
threads = _environment["WEB_THREADS"]
# A CSV export streams for as long as its rows take, and a sync worker sends no heartbeat meanwhile: gunicorn's
# 30 s default would kill a large one mid-file (docs/backoffice.md has the measured times).
timeout = _environment["WEB_TIMEOUT"]
# gunicorn's control socket (in the home directory by default) is not used: no socket, no "Permission denied".
control_socket_disable = True
accesslog = "-"
# The path without its query string (%(U)s, not the request line %(r)s): a query may carry an activation code or a
# license key (support searches by code); the redacting filter is the second line of defence. The last field is the
# X-Request-Id the application answered with (config.logging.RequestIdMiddleware), the id its own lines carry.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s" request_id=%({x-request-id}o)s'
_gunicorn_logger = {"handlers": ["console"], "level": "INFO", "propagate": False}
logconfig_dict = logging_config(
    log_format=log_format_choose(_environment["LOG_FORMAT"]),
    loggers={"gunicorn.error": _gunicorn_logger, "gunicorn.access": {**_gunicorn_logger, "filters": ["skip_static"]}},
)


def when_ready(server):
    """`make run` (RUN_BANNER=1) says where the issuer answers once gunicorn listens, not before it does."""
    if _environment["RUN_BANNER"]:
        for listener in server.LISTENERS:
            print(f"\nIssuer running at {listener}/  (back office: {listener}/admin/)\n", flush=True)


def _without_server_header(default_headers):
    """gunicorn has no setting for its `Server: gunicorn` header; every response is written through this method."""

    def headers(self):
        return [line for line in default_headers(self) if not line.lower().startswith("server:")]

    headers.without_server = True
    return headers


if not getattr(wsgi.Response.default_headers, "without_server", False):
    wsgi.Response.default_headers = _without_server_header(wsgi.Response.default_headers)


def post_worker_init(worker):
    """In each worker, after the fork and the application's load: its own PKCS#11 session (issuer/keys/hsm.py),
    never one opened in the master and inherited (PKCS#11 state does not survive a fork)."""
    from issuer.keys.hsm import hsm_open_for_process

    hsm_open_for_process()
