"""The runbook's commands run as written (docs/operations.md, docs/troubleshooting.md).

Each command block tagged `<!-- runbook-test: NAME [postgres] -->` is extracted from the page and run with bash
(`-euo pipefail`) in a plain install made the way `make run` makes one: a copy of the project with the shared
virtualenv, `scripts/write_env.py .env`, `migrate`, `signing_keys ensure`, on SQLite; the `postgres` blocks against
a scratch PostgreSQL database. Each test then checks what the procedure promises. A command block of those pages
that is neither tagged nor a compose command fails the first test, so no procedure goes untested."""

import os
import re
import shlex
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from config.environment import REGISTRY
from tests.helpers import postgres_only

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "docs" / "operations.md", ROOT / "docs" / "troubleshooting.md"]
TAGGED = re.compile(
    r"^(?P<indent> *)<!-- runbook-test: (?P<name>[\w-]+)(?P<needs>(?: \w+)*) -->\n"
    r"(?P=indent)```sh\n(?P<body>.*?)^(?P=indent)```$",
    re.MULTILINE | re.DOTALL,
)
ANY_BLOCK = re.compile(r"^( *)```sh\n(.*?)^\1```$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    name: str
    needs: tuple[str, ...]
    script: str


def _dedent(body: str, indent: str) -> str:
    return "".join(line.removeprefix(indent) for line in body.splitlines(keepends=True))


def runbook_blocks() -> dict[str, Block]:
    blocks = {}
    for page in PAGES:
        for match in TAGGED.finditer(page.read_text()):
            name = match["name"]
            assert name not in blocks, f"two runbook blocks named {name}"
            blocks[name] = Block(name, tuple(match["needs"].split()), _dedent(match["body"], match["indent"]))
    return blocks


BLOCKS = runbook_blocks()


def _plain_environment(**extra: str) -> dict[str, str]:
    """This machine's environment without any of the issuer's variables: the install's `.env` decides."""
    env = {key: value for key, value in os.environ.items() if key not in REGISTRY and not key.startswith("PYTEST")}
    env.update(extra)
    return env


class Install:
    """A plain install in a folder, reset to its first state before each procedure."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.saved = folder.parent / "saved"

    def run(self, script: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=self.folder,
            env=_plain_environment(**env),
            capture_output=True,
            text=True,
            timeout=600,
        )

    def procedure(self, name: str, **env: str) -> subprocess.CompletedProcess:
        done = self.run(BLOCKS[name].script, **env)
        assert done.returncode == 0, f"{name}:\n{done.stdout}\n{done.stderr}"
        return done

    def manage(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return self.run(shlex.join([".venv/bin/python", "manage.py", *args]), **env)

    def shell(self, code: str) -> str:
        """The last line a `manage.py shell -c` prints."""
        done = self.manage("shell", "-v", "0", "-c", code)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""

    def keys(self) -> dict[str, str]:
        listed = self.manage("signing_keys", "list")
        assert listed.returncode == 0, listed.stderr
        return dict(re.findall(r"^kid=(\S+)\s+state=(\S+)", listed.stdout, re.MULTILINE))

    def env_file(self) -> dict[str, str]:
        return dict(re.findall(r"^([A-Z_]+)=(.*)$", (self.folder / ".env").read_text(), re.MULTILINE))

    def save(self) -> None:
        self.saved.mkdir(exist_ok=True)
        for name in ("db.sqlite3", ".env"):
            shutil.copy2(self.folder / name, self.saved / name)

    def reset(self) -> None:
        for leftover in ("backups", "db.sqlite3-wal", "db.sqlite3-shm", "var/next-kid"):
            path = self.folder / leftover
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        for name in ("db.sqlite3", ".env"):
            shutil.copy2(self.saved / name, self.folder / name)


def _plain_install(folder: Path) -> Install:
    shutil.copytree(
        ROOT,
        folder,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "var", "db.sqlite3*", ".env", "backups", "site", "__pycache__", "*.dump", ".*_cache"
        ),
    )
    (folder / ".venv").symlink_to((ROOT / ".venv").resolve())
    install = Install(folder)
    for step in (
        ".venv/bin/python scripts/write_env.py .env",
        ".venv/bin/python manage.py migrate --noinput -v0",
        ".venv/bin/python manage.py signing_keys ensure",
    ):
        done = install.run(step)
        assert done.returncode == 0, f"{step}: {done.stderr}"
    return install


@pytest.fixture(scope="module")
def fresh_install(tmp_path_factory):
    install = _plain_install(tmp_path_factory.mktemp("runbook") / "issuer")
    install.save()
    return install


@pytest.fixture
def install(fresh_install):
    fresh_install.reset()
    return fresh_install


def test_every_command_block_of_the_runbook_is_tagged_and_tested():
    untagged = []
    for page in PAGES:
        text = page.read_text()
        tagged_spans = [match.span("body") for match in TAGGED.finditer(text)]
        for match in ANY_BLOCK.finditer(text):
            inside = any(start <= match.start(2) < end for start, end in tagged_spans)
            if not inside and not match[2].lstrip().startswith("docker compose"):
                untagged.append(f"{page.name}: {match[2].strip().splitlines()[0]}")
    assert not untagged, untagged
    tested = {name for test in TESTS for name in test}
    assert set(BLOCKS) == tested, f"untested: {set(BLOCKS) - tested}, gone: {tested - set(BLOCKS)}"


def test_a_standby_key_takes_over_from_a_revoked_one_which_is_then_purged(install):
    first = install.keys()
    install.procedure("standby-key")
    standby = next(kid for kid, state in install.keys().items() if state == "pending")
    revoked = install.procedure("revoke")
    assert "remint=queued" in revoked.stdout
    after = install.keys()
    assert after[standby] == "active" and {first_kid: after[first_kid] for first_kid in first} == {
        kid: "revoked" for kid in first
    }
    install.procedure("queue-refresh")
    install.procedure("purge-revoked")
    assert install.keys() == {standby: "active"}


def test_rotating_by_hand_waits_for_the_publish_lead(install):
    early = install.run(BLOCKS["rotate-by-hand"].script)
    assert early.returncode != 0 and "may only sign after 2.0 days" in early.stderr, early.stderr
    install.reset()
    install.procedure("rotate-by-hand", ISSUER_PUBLISH_LEAD_SECONDS="0")
    new = (install.folder / "var" / "next-kid").read_text().strip()
    assert install.keys()[new] == "active"


def test_a_forced_activation_does_not_wait(install):
    install.procedure("standby-key")
    pending = next(kid for kid, state in install.keys().items() if state == "pending")
    install.procedure("force-activate")
    assert install.keys()[pending] == "active"


def test_a_kek_rotation_leaves_only_the_new_key_able_to_decrypt(install):
    old = install.env_file()["KEY_ENCRYPTION_KEYS"]
    install.procedure("kek-rotation")
    new = install.env_file()["KEY_ENCRYPTION_KEYS"]
    assert new != old and "," not in new
    refused = install.manage("check", "--database", "default", KEY_ENCRYPTION_KEYS=old)
    assert refused.returncode != 0 and "issuer.E001" in refused.stderr


ACTIVATE = (
    "from subscriptions.services import instance_activate; from tests.factories import AddOnPurchaseFactory; "
    "code = AddOnPurchaseFactory(add_on='duo_enterprise', quantity=5).subscription.activation_code; "
    "print(instance_activate(activation_code=code, instance_identifier='{uuid}').license_key)"
)
FIND = "from subscriptions.selectors import instance_by_license_key; print(instance_by_license_key('{key}'))"


def test_a_new_pepper_invalidates_the_license_keys_issued_before(install):
    license_key = install.shell(ACTIVATE.format(uuid=uuid.uuid4()))
    assert license_key and install.shell(FIND.format(key=license_key)) != "None"
    old = install.env_file()["LICENSE_KEY_PEPPER"]
    install.procedure("pepper-change")
    assert install.env_file()["LICENSE_KEY_PEPPER"] not in {old, ""}
    assert install.shell(FIND.format(key=license_key)) == "None"


def test_a_sqlite_backup_restores_what_it_held(install):
    before = install.keys()
    install.procedure("sqlite-backup")
    assert len(list((install.folder / "backups").glob("issuer-*.sqlite3"))) == 1
    assert install.manage("signing_keys", "create").returncode == 0
    assert len(install.keys()) == len(before) + 1
    install.procedure("sqlite-restore")
    assert install.keys() == before
    other = install.manage("check", "--database", "default", KEY_ENCRYPTION_KEYS=Fernet.generate_key().decode())
    assert other.returncode != 0 and "issuer.E001" in other.stderr


LOCK_OUT = (
    "from axes.models import AccessAttempt; "
    "AccessAttempt.objects.create(username='alice', ip_address='203.0.113.7', user_agent='curl', get_data='', "
    "post_data='', http_accept='*/*', path_info='/admin/login/', failures_since_start=20); "
    "AccessAttempt.objects.create(username='bob', ip_address='198.51.100.9', user_agent='curl', get_data='', "
    "post_data='', http_accept='*/*', path_info='/admin/login/', failures_since_start=5)"
)
COUNT_LOCKS = "from axes.models import AccessAttempt; print(AccessAttempt.objects.count())"


def test_a_locked_out_admin_is_unlocked(install):
    install.shell(LOCK_OUT)
    assert install.shell(COUNT_LOCKS) == "2"
    install.procedure("unlock-admin")
    assert install.shell(COUNT_LOCKS) == "0"


def test_a_secret_key_rotation_ends_without_the_fallback(install):
    old = install.env_file()["SECRET_KEY"]
    install.procedure("secret-key-rotation")
    after = install.env_file()
    assert after["SECRET_KEY"] not in {old, ""} and "SECRET_KEY_FALLBACKS" not in after


def test_the_check_after_an_outage_passes_on_a_sound_install(install):
    install.procedure("check-after-outage")


@postgres_only
@pytest.mark.django_db
def test_a_postgresql_backup_restores_what_it_held(install):
    """A scratch database on this run's PostgreSQL server, created as its owner: the install's `.env` points at it."""
    from django.conf import settings

    source = connection.settings_dict
    owner = settings.DATABASE_OWNER_CREDENTIALS or {"USER": source["USER"], "PASSWORD": source["PASSWORD"]}
    user = owner["USER"] or "postgres"
    secret = f":{owner['PASSWORD']}" if owner["PASSWORD"] else ""
    host, port = source["HOST"] or "127.0.0.1", source["PORT"] or 5432
    name = f"issuer_runbook_{uuid.uuid4().hex[:8]}"
    url = f"postgres://{user}{secret}@{host}:{port}/{name}"
    admin = f"postgres://{user}{secret}@{host}:{port}/postgres"
    subprocess.run(["psql", "-q", "-d", admin, "-c", f"CREATE DATABASE {name}"], check=True)
    try:
        with (install.folder / ".env").open("a") as env_file:
            env_file.write(f"DATABASE_URL={url}\n")
        for step in (("migrate", "--noinput", "-v0"), ("signing_keys", "ensure")):
            done = install.manage(*step)
            assert done.returncode == 0, done.stderr
        before = install.keys()
        install.procedure("postgres-backup")
        assert install.manage("signing_keys", "create").returncode == 0
        assert len(install.keys()) == len(before) + 1
        install.procedure("postgres-restore")
        assert install.keys() == before
    finally:
        subprocess.run(["psql", "-q", "-d", admin, "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=True)


# Which blocks each test above runs (the first test checks that every tagged block is in one of them).
TESTS = [
    ("standby-key", "revoke", "queue-refresh", "purge-revoked"),
    ("rotate-by-hand",),
    ("force-activate",),
    ("kek-rotation",),
    ("pepper-change",),
    ("sqlite-backup", "sqlite-restore"),
    ("unlock-admin",),
    ("secret-key-rotation",),
    ("check-after-outage",),
    ("postgres-backup", "postgres-restore"),
]
