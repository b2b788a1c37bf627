"""The deployment files: compose is sound, and every environment variable is documented."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_compose_stack_shape():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "web", "worker", "beat"}
    app_images = {services[name]["image"] for name in ("migrate", "web", "worker", "beat")}
    assert len(app_images) == 1, "one image for every app service"
    assert services["beat"]["deploy"]["replicas"] == 1
    assert services["migrate"]["restart"] == "no"
    for name in ("postgres", "redis", "web", "worker"):
        assert "healthcheck" in services[name], name
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert set(compose["volumes"]) == {"postgres-data", "redis-data", "beat-data"}
    assert services["web"]["ports"] == ["127.0.0.1:8000:8000"], "only the proxy on this host reaches gunicorn"
    assert "signing_keys ensure" in " ".join(services["migrate"]["command"])


def test_every_variable_is_documented_in_env_example_and_the_reference():
    """Generated from the registry (tests/config/test_environment.py checks they are current); compose's own
    variables are registered too."""
    example = (ROOT / ".env.example").read_text()
    reference = (ROOT / "docs" / "configuration.md").read_text()
    documented = set(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]*)=", example, re.MULTILINE))
    from config.environment import REGISTRY

    in_env_file = {name for name, variable in REGISTRY.items() if variable.in_env_file}
    assert in_env_file <= documented, in_env_file - documented
    assert not {name for name in REGISTRY if f"| `{name}` |" not in reference}
    compose = (ROOT / "docker-compose.yml").read_text()
    assert set(re.findall(r"\$\{([A-Z_]+)", compose)) <= set(REGISTRY)


def test_compose_file_validates_with_docker_compose(tmp_path):
    """Debian's docker-compose parses and validates the file (no engine needed); .ci/run installs it."""
    import shutil
    import subprocess

    from tests.requirements import need

    need("docker-compose")  # skipped where missing; on CI (CI=true) a failure, never a skip
    binary = shutil.which("docker-compose")
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    shutil.copy(ROOT / "Dockerfile", tmp_path / "Dockerfile")
    done = subprocess.run([binary, "config", "-q"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_env_example_copied_as_is_configures_a_working_process(tmp_path):
    """`cp .env.example .env` plus the three secrets must start: no empty value that breaks a default."""
    import os
    import subprocess
    import sys

    from cryptography.fernet import Fernet

    example = (ROOT / ".env.example").read_text()
    filled = (
        example.replace("SECRET_KEY=\n", "SECRET_KEY=s3cret-for-the-test\n")
        .replace("KEY_ENCRYPTION_KEYS=\n", f"KEY_ENCRYPTION_KEYS={Fernet.generate_key().decode()}\n")
        .replace("LICENSE_KEY_PEPPER=\n", "LICENSE_KEY_PEPPER=pepper-for-the-test\n")
    )
    env_file = tmp_path / ".env"
    env_file.write_text(filled)
    script = (
        "import environ, os; environ.Env.read_env(os.environ['ENV_FILE']);"
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings'; import django; django.setup();"
        "from django.core.management import call_command; call_command('check')"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ISSUER", "DATABASE", "REDIS", "SECRET", "KEY_", "LICENSE", "DJANGO", "CATALOG"))
    }
    env["ENV_FILE"] = str(env_file)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_dockerignore_keeps_secrets_state_and_tools_out_of_the_build_context(tmp_path):
    """What `podman build .` would send: git's own matcher applies the same patterns (a .dockerignore has no
    negation quirks here beyond `!.env.example`)."""
    import subprocess

    patterns = (ROOT / ".dockerignore").read_text()
    (tmp_path / ".gitignore").write_text(patterns)
    for path in (
        ".env",
        ".venv/bin/python",
        "db.sqlite3",
        "var/static/x.css",
        "tests/test_x.py",
        ".env.example",
        "manage.py",
        "issuer/models.py",
    ):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("x")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    ignored = subprocess.run(
        [
            "git",
            "check-ignore",
            "--no-index",
            ".env",
            ".venv/bin/python",
            "db.sqlite3",
            "var/static/x.css",
            "tests/test_x.py",
            ".env.example",
            "manage.py",
            "issuer/models.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert {".env", ".venv/bin/python", "db.sqlite3", "var/static/x.css", "tests/test_x.py"} <= set(ignored)
    assert not {".env.example", "manage.py", "issuer/models.py"} & set(ignored)
    assert ".git" in patterns.splitlines()


def test_the_image_installs_only_what_runs():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=" in dockerfile and "requirements-dev" not in dockerfile
    runtime = (ROOT / "requirements.txt").read_text().lower()
    for tool in ("pytest", "playwright", "ruff", "hypothesis", "faker", "import-linter"):
        assert f"\n{tool}" not in runtime, tool


def test_the_default_issuer_url_follows_the_port():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("ISSUER_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(PORT="9000", SECRET_KEY="x", KEY_ENCRYPTION_KEYS="", LICENSE_KEY_PEPPER="x")
    code = "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings'; django.setup(); from django.conf import settings; print(settings.ISSUER_URL)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip().splitlines()[-1] == "http://127.0.0.1:9000", done.stderr


def test_make_run_refuses_a_port_in_use_before_starting_anything():
    import socket
    import subprocess
    import sys

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "scripts/port_free.py", str(port)], cwd=ROOT, capture_output=True, text=True
        )
    assert done.returncode == 1 and f"Port {port} is already in use" in done.stderr


def test_the_landing_page_links_the_public_documents(client, db):
    page = client.get("/").content.decode()
    for link in ("/admin/", "/.well-known/openid-configuration", "/oauth/discovery/keys", "/api/docs/"):
        assert f'href="{link}"' in page


def test_check_deploy_is_clean_with_an_https_issuer_url(tmp_path):
    import os
    import secrets
    import subprocess
    import sys

    from cryptography.fernet import Fernet

    unrelated = ("DJANGO_SETTINGS_MODULE", "REDIS_URL", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")  # set by the suite
    env = {k: v for k, v in os.environ.items() if k not in unrelated}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        ISSUER_URL="https://issuer.example.test",
        ALLOWED_HOSTS="issuer.example.test",
        SECRET_KEY=secrets.token_urlsafe(50),
        KEY_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        LICENSE_KEY_PEPPER=secrets.token_urlsafe(32),
        DATABASE_URL=f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
        DEBUG="0",
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_every_page_carries_a_strict_content_security_policy(client, admin_user):
    client.force_login(admin_user)
    for path in ("/", "/admin/", "/admin/keys/", "/api/docs/"):
        policy = client.get(path)["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        script = next(part for part in policy.split(";") if part.strip().startswith("script-src"))
        assert "unsafe-inline" not in script, "no inline script anywhere"
        assert ("unsafe-inline" in policy) is (path == "/api/docs/"), "inline styles only for Swagger UI"


def test_machine_doors_answer_json_without_a_page_policy(client, signing_key):
    """JSON is never rendered as a page (nosniff), so the instance doors skip the policy's cost."""
    for path in ("/oauth/discovery/keys", "/.well-known/openid-configuration", "/healthz"):
        response = client.get(path)
        assert response.status_code == 200
        assert "Content-Security-Policy" not in response
        assert response["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" in client.get("/")


def test_compose_redis_has_a_password_and_no_anonymous_user():
    """Issue 23: whoever reaches Redis on the compose network needs the password of the ACL user `issuer`, which
    may run everything the broker, the cache and the counting scripts use, and nothing dangerous."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    redis = compose["services"]["redis"]
    command = " ".join(redis["command"])
    assert "--user default off" in command
    assert "--user issuer on >${REDIS_PASSWORD:-issuer} ~* &* +@all -@dangerous" in command
    assert "--pass" in " ".join(redis["healthcheck"]["test"]) and "PONG" in " ".join(redis["healthcheck"]["test"])
    assert compose["x-app"]["environment"]["REDIS_URL"].startswith("redis://issuer:${REDIS_PASSWORD:-issuer}@redis:")
    assert re.search(r"^# REDIS_PASSWORD=", (ROOT / ".env.example").read_text(), re.MULTILINE)


def test_compose_gives_the_owner_credentials_to_migrate_only():
    """Issue 23, part 2: web, worker and beat connect as the runtime role; migrate alone as the owner, and it names
    the runtime role so that it is created and granted."""
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    runtime_url = compose["x-app"]["environment"]["DATABASE_URL"]
    assert runtime_url.startswith("postgres://issuer_app:${POSTGRES_APP_PASSWORD:-issuer_app}@")
    for service in ("web", "worker", "beat"):
        environment = compose["services"][service]["environment"]
        assert environment["DATABASE_URL"] == runtime_url and environment["POSTGRES_PASSWORD"] == ""
    migrate = compose["services"]["migrate"]["environment"]
    assert migrate["DATABASE_URL"].startswith("postgres://issuer:${POSTGRES_PASSWORD:-issuer}@")
    assert migrate["DATABASE_RUNTIME_ROLE"] == "issuer_app"
    assert migrate["DATABASE_RUNTIME_PASSWORD"] == "${POSTGRES_APP_PASSWORD:-issuer_app}"
    assert migrate["REDIS_URL"] == compose["x-app"]["environment"]["REDIS_URL"]
