"""gunicorn settings: JSON log lines with secrets redacted, like the application's own.

Used by `make run`, the Dockerfile and compose (`gunicorn -c config/gunicorn.conf.py config.wsgi`); the bind
address comes from the command line, the worker count from WEB_CONCURRENCY (gunicorn's own variable).
"""

import os

from config.logging import json_logging

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# gunicorn's control socket (in the home directory by default) is not used: no socket, no "Permission denied".
control_socket_disable = True
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
_gunicorn_logger = {"handlers": ["console"], "level": "INFO", "propagate": False}
logconfig_dict = json_logging(loggers={"gunicorn.error": _gunicorn_logger, "gunicorn.access": _gunicorn_logger})
