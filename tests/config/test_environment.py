"""Every environment variable is read by its own type from one registry (config/environment.py): a documented value
starts the issuer, a value that does not parse or an ISSUER_* name nobody reads is a clear start-up error, never a
traceback; the code reads no variable the registry lacks, and the generated reference matches the registry."""

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from config.environment import REGISTRY, UnregisteredVariable, environment_read

ROOT = Path(__file__).resolve().parents[2]

# Realistic values for what .env.example leaves empty or shows as a placeholder of this machine's paths.
REALISTIC = {
    "SECRET_KEY": "a-long-random-secret-key-for-this-test-0123456789",
    "KEY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "LICENSE_KEY_PEPPER": "a-long-random-pepper-for-this-test-0123456789",
    "ISSUER_METRICS_TOKEN": "metrics-bearer-token-abc",
    "ISSUER_METRICS_ALLOWED_NETWORKS": "10.0.0.0/8,127.0.0.1/8,::1/128",
    "POSTGRES_PASSWORD": "change-me",
    "CATALOG_PATH": str(ROOT / "unit_primitives" / "catalog"),
}


def _documented() -> dict[str, str]:
    example = (ROOT / ".env.example").read_text()
    return dict(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]*)=(.*)$", example, re.MULTILINE))


def _django(env_overrides: dict[str, str], code: str, tmp_path) -> subprocess.CompletedProcess:
    """A fresh process with the real settings, this environment and no .env file."""
    env = {
        key: value for key, value in os.environ.items() if key not in _documented() and key != "DJANGO_SETTINGS_MODULE"
    }
    env.update(env_overrides, DJANGO_SETTINGS_MODULE="config.settings")
    env.setdefault("DATABASE_URL", f"sqlite:///{tmp_path}/db.sqlite3")
    prelude = "import environ; environ.Env.read_env = lambda *a, **k: None; import django; django.setup(); "
    return subprocess.run(
        [sys.executable, "-c", prelude + code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_every_documented_variable_with_a_realistic_value_starts_django(tmp_path):
    values = {name: REALISTIC.get(name) or shown for name, shown in _documented().items()}
    values = {name: value for name, value in values.items() if value}
    values["DATABASE_URL"] = f"sqlite:///{tmp_path}/db.sqlite3"
    values.pop("REDIS_URL", None)  # the check below needs no broker; Redis is exercised by the Redis tests
    assert {"ISSUER_METRICS_TOKEN", "ISSUER_AUDIT_RETENTION_DAYS", "ISSUER_TOKEN_TTL_SECONDS"} <= set(values)
    result = _django(
        values,
        "from django.core.management import call_command; call_command('check'); "
        "from django.conf import settings; from issuer.conf import issuer_settings; "
        "print(settings.ISSUER_METRICS_TOKEN, settings.ISSUER_METRICS_ALLOWED_NETWORKS, "
        "settings.ISSUER_AUDIT_RETENTION_DAYS, issuer_settings.TOKEN_TTL_SECONDS)",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        "metrics-bearer-token-abc ['10.0.0.0/8', '127.0.0.1/8', '::1/128'] 730 259200"
    )


def test_a_bad_value_or_an_unknown_name_stops_start_up_naming_it(tmp_path):
    result = _django(
        {"DEBUG": "1", "ISSUER_TOKEN_TTL_SECONDS": "three days", "ISSUER_TOKEN_TTL": "60", "AXES_FAILURE_LIMIT": "x"},
        "import sys, runpy; sys.argv = ['manage.py', 'check']; runpy.run_path('manage.py', run_name='__main__')",
        tmp_path,
    )
    assert result.returncode != 0
    assert "config.E007" in result.stderr and "Traceback" not in result.stderr
    assert "ISSUER_TOKEN_TTL_SECONDS='three days' is not an integer" in result.stderr
    assert "ISSUER_TOKEN_TTL is not a setting of this issuer" in result.stderr
    assert "AXES_FAILURE_LIMIT='x' is not an integer" in result.stderr


def test_each_variable_is_read_by_its_own_type():
    read = environment_read(
        {
            "ISSUER_METRICS_TOKEN": "abc",
            "ISSUER_METRICS_ALLOWED_NETWORKS": "10.0.0.0/8, 192.168.0.0/16",
            "ISSUER_AUDIT_RETENTION_DAYS": "",
            "ISSUER_RSA_KEY_SIZE": "3072",
            "PATH": "/usr/bin",
        }
    )
    assert read.errors == []
    assert read["ISSUER_METRICS_TOKEN"] == "abc"
    assert read["ISSUER_METRICS_ALLOWED_NETWORKS"] == ["10.0.0.0/8", "192.168.0.0/16"]
    assert read["ISSUER_AUDIT_RETENTION_DAYS"] is None
    assert read.knobs == {"RSA_KEY_SIZE": 3072}  # the unset knobs keep the defaults of issuer/conf.py


def test_the_defaults_hold_when_nothing_is_set():
    read = environment_read({})
    assert read.errors == [] and read.knobs == {}
    assert read["ISSUER_METRICS_ALLOWED_NETWORKS"] == ["127.0.0.1/8", "::1/128"]
    assert read["ISSUER_AUDIT_RETENTION_DAYS"] is None and read["ISSUER_METRICS_TOKEN"] == ""
    assert read["DEBUG"] is False and read["PORT"] == 8000 and read["DATABASE_URL"]["ENGINE"].endswith("sqlite3")


def test_settings_variables_parse_by_type_and_a_bad_one_is_named():
    read = environment_read(
        {"DEBUG": "yes", "ALLOWED_HOSTS": "a.example, b.example", "DATABASE_URL": "postgres://u:p@db:5432/issuer"}
    )
    assert read.errors == []
    assert read["DEBUG"] is True and read["ALLOWED_HOSTS"] == ["a.example", "b.example"]
    assert read["DATABASE_URL"]["ENGINE"] == "django.db.backends.postgresql" and read["DATABASE_URL"]["PORT"] == 5432

    bad = environment_read(
        {"DEBUG": "maybe", "PORT": "http", "INSTANCE_RATE_PER_ADDRESS": "lots", "DATABASE_URL": "postgress://db/x"}
    )
    assert [error.split("=")[0] for error in bad.errors] == [
        "PORT",
        "DATABASE_URL",
        "DEBUG",
        "INSTANCE_RATE_PER_ADDRESS",
    ]
    assert bad["DEBUG"] is False and bad["PORT"] == 8000 and bad["INSTANCE_RATE_PER_ADDRESS"] == "120/m"
    # A malformed database URL is never a guess at SQLite: Django's dummy backend fails every query.
    assert bad["DATABASE_URL"] == {"ENGINE": "django.db.backends.dummy"}


def test_a_name_the_registry_lacks_is_refused():
    with pytest.raises(UnregisteredVariable, match="NOT_A_VARIABLE is not declared in config/environment.py"):
        environment_read({"NOT_A_VARIABLE": "1"})["NOT_A_VARIABLE"]


def test_defaults_are_copies_that_settings_may_change():
    first = environment_read({})
    first["ALLOWED_HOSTS"].append("changed.example")
    first["DATABASE_URL"]["CONN_MAX_AGE"] = 1
    second = environment_read({})
    assert "changed.example" not in second["ALLOWED_HOSTS"] and "CONN_MAX_AGE" not in second["DATABASE_URL"]


# Loads what the running app loads (settings, the WSGI app, Celery, gunicorn's configuration) with os.environ
# replaced by a mapping that records each name read from a file under one of the given folders (the project's own
# code, not Django's or Celery's). Prints the names, one a line.
RECORDER = r"""
import os, runpy, sys
from pathlib import Path

FOLDERS = [Path(folder) for folder in sys.argv[1:]]
VENV = Path(sys.prefix).resolve()
read = set()


def _ours():
    frame = sys._getframe(2)
    while frame and frame.f_code.co_filename == "<string>":
        frame = frame.f_back
    if not frame or frame.f_code.co_filename.startswith("<"):  # "<frozen os>", "<frozen posixpath>": Python's own
        return False
    path = Path(frame.f_code.co_filename).resolve()
    return any(path.is_relative_to(f) for f in FOLDERS) and not path.is_relative_to(VENV)


class Recording(dict):
    def __getitem__(self, name):
        if _ours():
            read.add(name)
        return super().__getitem__(name)

    def get(self, name, default=None):
        if _ours():
            read.add(name)
        return super().get(name, default)

    def __contains__(self, name):
        if _ours():
            read.add(name)
        return super().__contains__(name)

    def setdefault(self, name, default=None):
        if _ours():
            read.add(name)
        return super().setdefault(name, default)


import environ
environ.Env.read_env = lambda *a, **k: None  # this machine's .env is not the point
os.environ = Recording(os.environ)
sys.path.insert(0, os.getcwd())
import django
django.setup()
import config.wsgi, config.celery
runpy.run_path("config/gunicorn.conf.py")
for extra in FOLDERS[1:]:
    sys.path.insert(0, str(extra))
    __import__("reads_a_variable")
print(" ".join(sorted(read)))
"""


def _read_at_start_up(tmp_path, *extra_folders) -> set[str]:
    env = {key: value for key, value in os.environ.items() if key not in REGISTRY}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="1",
        SKIP_STARTUP_CHECKS="1",
        DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3",
    )
    done = subprocess.run(
        [sys.executable, "-c", RECORDER, str(ROOT), *map(str, extra_folders)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def test_what_the_app_reads_at_start_up_is_in_the_registry(tmp_path):
    read = _read_at_start_up(tmp_path)
    assert {"DEBUG", "SECRET_KEY", "WEB_CONCURRENCY", "DJANGO_SETTINGS_MODULE", "ISSUER_TOKEN_TTL_SECONDS"} <= read
    assert read - set(REGISTRY) == set()


def test_the_recorder_catches_a_read_the_registry_lacks(tmp_path):
    module = tmp_path / "extra"
    module.mkdir()
    (module / "reads_a_variable.py").write_text('import os\nos.environ.get("NOT_IN_THE_REGISTRY")\n')
    assert "NOT_IN_THE_REGISTRY" in _read_at_start_up(tmp_path, module) - set(REGISTRY)


def _environment_reads(path: Path) -> set[str]:
    """Literal names read through os.environ / os.getenv in a module (reads at run time, not only at import)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            key = node.slice
        elif isinstance(node, ast.Call) and ast.unparse(node.func) in {
            "os.environ.get",
            "os.environ.setdefault",
            "os.environ.pop",
            "os.getenv",
        }:
            key = node.args[0] if node.args else None
        else:
            continue
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            names.add(key.value)
    return names


APP_CODE_EXCLUDED = ("tests", "bench", "scripts", ".venv", "var", "docs", "site")


def test_no_module_of_the_app_reads_a_variable_the_registry_lacks():
    modules = [
        path
        for path in ROOT.rglob("*.py")
        if path.relative_to(ROOT).parts[0] not in APP_CODE_EXCLUDED and path.name != "test_settings.py"
    ]
    assert ROOT / "config" / "gunicorn.conf.py" in modules and ROOT / "manage.py" in modules
    unregistered = {
        f"{path.relative_to(ROOT)}: {name}" for path in modules for name in _environment_reads(path) - set(REGISTRY)
    }
    assert not unregistered, unregistered
    readers = [path for path in modules if "environ.Env(" in path.read_text()]
    assert readers == [], "read variables through config/environment.py, not a django-environ reader of their own"


def test_the_generated_reference_and_env_example_match_the_registry():
    done = subprocess.run(
        [sys.executable, "scripts/generate_config_docs.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_the_check_names_a_stale_file(tmp_path):
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "configuration.md", tmp_path / "docs" / "configuration.md")
    (tmp_path / ".env.example").write_text((ROOT / ".env.example").read_text().replace("# PORT=8000\n", ""))
    done = subprocess.run(
        [sys.executable, "scripts/generate_config_docs.py", "--check", "--root", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert ".env.example differs from config/environment.py" in done.stderr and "configuration.md" not in done.stderr
