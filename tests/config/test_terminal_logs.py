"""What a newcomer sees in a terminal: readable log lines (JSON elsewhere), access lines with the request id and
without static files, "running at" once gunicorn listens, and the first-admin hint only while there is no user."""

import contextlib
import io
import logging
import os
import runpy
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import django
import pytest

from config.environment import environment_read
from config.logging import ReadableFormatter, RequestIdFilter, log_format_choose, request_id_var

ROOT = Path(__file__).resolve().parents[2]


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_the_log_format_follows_the_setting_else_the_terminal():
    assert log_format_choose("auto", _Terminal()) == "text"
    assert log_format_choose("", io.StringIO()) == "json", "a pipe, a file, a container: JSON lines"
    assert log_format_choose("json", _Terminal()) == "json"
    assert log_format_choose("TEXT", io.StringIO()) == "text"
    errors = environment_read({"LOG_FORMAT": "xml"}).errors
    assert errors == ["LOG_FORMAT='xml' is not a log format (use json, text or auto)."], "config.E007 refuses it"


def test_a_readable_line_has_time_level_logger_request_id_message_and_extras():
    record = logging.LogRecord("issuer.tasks", logging.INFO, __file__, 1, "policy acted on %s", ("a key",), None)
    record.actions = ["created abc"]
    token = request_id_var.set("req-42")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)
    line = ReadableFormatter().format(record)
    assert line.endswith(" INFO  issuer.tasks [req-42] policy acted on a key actions=['created abc']"), line
    assert not line.startswith("{")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server_env(tmp_path, **extra) -> dict:
    from cryptography.fernet import Fernet

    unrelated = ("DJANGO_SETTINGS_MODULE", "REDIS_URL", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")
    env = {k: v for k, v in os.environ.items() if k not in unrelated}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        SECRET_KEY="terminal-test-secret-key-0123456789-abcdefghijklmnop",
        KEY_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        LICENSE_KEY_PEPPER="terminal-test-pepper-0123456789-abcdefghijklmnop",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        WEB_CONCURRENCY="1",
        **extra,
    )
    return env


def test_gunicorn_in_a_terminal_says_running_at_once_listening_and_logs_readable_access_lines(tmp_path):
    output, port = tmp_path / "output.log", _free_port()
    env = _server_env(tmp_path, RUN_BANNER="1", LOG_FORMAT="text")
    command = [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "-b", f"127.0.0.1:{port}"]
    with output.open("w") as sink:
        server = subprocess.Popen([*command, "config.wsgi"], cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(150):
                try:
                    response = urllib.request.urlopen(f"{base}/healthz", timeout=2)
                    break
                except OSError:
                    time.sleep(0.1)
            request_id = response.headers["X-Request-Id"]
            with contextlib.suppress(OSError):  # not collected in a test run (a 404): logged or not by its path alone
                urllib.request.urlopen(f"{base}/static/issuer/backoffice.css", timeout=5).read()
            time.sleep(0.5)
        finally:
            server.terminate()
            server.wait(timeout=30)
    log = output.read_text()
    listening = log.index("Listening at")
    assert log.index(f"Issuer running at http://127.0.0.1:{port}/") > listening, log
    access = [line for line in log.splitlines() if "/healthz" in line]
    assert any(f"request_id={request_id}" in line for line in access), log
    assert not access[0].lstrip().startswith("{"), "a readable line, not JSON"
    assert "Not Found: /static/issuer/backoffice.css" in log, "the static request reached the server"
    assert not [line for line in log.splitlines() if "gunicorn.access" in line and "/static/" in line]


@pytest.mark.django_db
def test_the_first_admin_hint_shows_only_while_there_is_no_user(django_user_model, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["first_admin_hint.py", ".venv/bin/python"])
    # Django is set up in this process already: setting it up again would configure logging onto capsys's stream,
    # which closes after this test and breaks every later log line on this worker.
    monkeypatch.setattr(django, "setup", lambda *args, **kwargs: None)
    runpy.run_path(str(ROOT / "scripts" / "first_admin_hint.py"), run_name="__main__")
    assert capsys.readouterr().out == "First admin: .venv/bin/python manage.py createsuperuser\n"
    django_user_model.objects.create_user("someone", password="pw")
    runpy.run_path(str(ROOT / "scripts" / "first_admin_hint.py"), run_name="__main__")
    assert capsys.readouterr().out == ""
