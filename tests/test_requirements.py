"""tests/requirements.py: a missing tool or service skips its tests, except where it is required (CI=true), where it
fails them; a test skipped by design (SQLite-only, the shifted clock) is not its business."""

import pytest
from _pytest.outcomes import Failed, Skipped

from tests import requirements
from tests.requirements import REQUIRED_ON_CI, need, required_here


@pytest.mark.parametrize("value", ["true", "TRUE", " true "])
def test_every_tool_and_service_is_required_on_ci(monkeypatch, value):
    monkeypatch.setenv("CI", value)
    assert all(required_here(name) for name in REQUIRED_ON_CI)
    assert set(REQUIRED_ON_CI) >= {"postgresql", "redis", "chromium", "promtool", "docker-compose"}


@pytest.mark.parametrize("value", [None, "", "false", "0"])
def test_nothing_is_required_off_ci(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert not any(required_here(name) for name in REQUIRED_ON_CI)


@pytest.mark.parametrize("name", sorted(REQUIRED_ON_CI))
def test_a_missing_requirement_fails_on_ci_and_skips_elsewhere(monkeypatch, name):
    monkeypatch.setattr(requirements, "present", lambda _name: False)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(Failed, match="required here"):
        need(name)
    monkeypatch.delenv("CI")
    with pytest.raises(Skipped, match=REQUIRED_ON_CI[name][:20]):
        need(name)
    monkeypatch.setattr(requirements, "present", lambda _name: True)
    monkeypatch.setenv("CI", "true")
    need(name)  # present: nothing to say


def test_an_unknown_name_is_a_mistake_not_a_skip():
    with pytest.raises(ValueError, match="Unknown requirement"):
        required_here("postgres")
    with pytest.raises(ValueError, match="Unknown requirement"):
        need("postgres")


def test_ci_exports_ci_true():
    from pathlib import Path

    run = (Path(__file__).resolve().parents[1] / ".ci/run").read_text()
    assert "\nexport CI=true\n" in run


def test_the_skips_of_missing_tools_go_through_need():
    """No test skips on its own for a missing tool or service: only tests/requirements.py decides."""
    from pathlib import Path

    root = Path(__file__).resolve().parent
    own = {root / "requirements.py", Path(__file__).resolve()}
    offenders = []
    for path in root.rglob("*.py"):
        if path in own:
            continue
        text = path.read_text()
        for marker in ("REDIS_URL=redis", "DATABASE_URL=postgres", "is not installed", 'environ.get("CI")'):
            if marker in text:
                offenders.append(f"{path.relative_to(root)}: {marker}")
    assert not offenders, offenders
