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
    assert set(compose["volumes"]) == {"postgres-data", "redis-data"}
    assert "signing_keys ensure" in " ".join(services["migrate"]["command"])


def _settings_variables() -> set[str]:
    text = (ROOT / "config" / "settings.py").read_text()
    return set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z_]+)"', text))


def test_every_variable_is_documented_in_env_example_and_readme():
    example = (ROOT / ".env.example").read_text()
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^([A-Z_]+)=", example, re.MULTILINE))
    from issuer.conf import DEFAULTS

    knobs = {f"ISSUER_{name}" for name in DEFAULTS}
    expected = _settings_variables() | knobs
    assert expected <= documented, expected - documented
    missing_in_readme = {name for name in expected if f"`{name}`" not in readme}
    assert not missing_in_readme, missing_in_readme


def test_compose_file_validates_with_docker_compose(tmp_path):
    """Debian's docker-compose parses and validates the file (no engine needed); .ci/run installs it."""
    import shutil
    import subprocess

    import pytest

    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (.ci/run installs Debian's package)")
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    shutil.copy(ROOT / "Dockerfile", tmp_path / "Dockerfile")
    done = subprocess.run([binary, "config", "-q"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
