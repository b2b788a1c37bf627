"""The alert rules and the Grafana dashboard shipped in deploy/: promtool checks the rules and runs one test case
per alert, and every metric they name is one /metrics exports (or django-prometheus's)."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.requirements import needs

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
PROMTOOL = shutil.which("promtool")
needs_promtool = needs("promtool")  # skipped where missing; on CI (CI=true) a failure, never a skip


@needs_promtool
def test_promtool_accepts_the_rules():
    result = subprocess.run([PROMTOOL, "check", "rules", "alerts.yml"], cwd=DEPLOY / "prometheus", capture_output=True)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


@needs_promtool
def test_every_alert_has_a_passing_promtool_test_case():
    rules = yaml.safe_load((DEPLOY / "prometheus/alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    cases = yaml.safe_load((DEPLOY / "prometheus/alerts_test.yml").read_text())
    tested = {check["alertname"] for case in cases["tests"] for check in case["alert_rule_test"]}
    assert alerts == tested
    result = subprocess.run(
        [PROMTOOL, "test", "rules", "alerts_test.yml"], cwd=DEPLOY / "prometheus", capture_output=True
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def _names(expression: str) -> set[str]:
    return set(re.findall(r"\b((?:issuer|django)_[a-z_]+)\b", expression))


def test_rules_and_dashboard_name_only_exported_metrics(client, db, signing_key):
    exported = client.get("/metrics").content.decode()
    rules = yaml.safe_load((DEPLOY / "prometheus/alerts.yml").read_text())
    used = set().union(*(_names(rule["expr"]) for group in rules["groups"] for rule in group["rules"]))
    dashboard = json.loads((DEPLOY / "grafana/issuer.json").read_text())
    used |= set().union(*(_names(target["expr"]) for panel in dashboard["panels"] for target in panel["targets"]))
    families = {name.removesuffix("_total").removesuffix("_bucket") for name in used}
    missing = {name for name in families if f"# TYPE {name}" not in exported and name + "_total" not in exported}
    assert not missing, missing
