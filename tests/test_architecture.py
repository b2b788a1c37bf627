"""The house rules of the README's "Project layout", enforced: imports run one way (import-linter contracts in
pyproject.toml), and no module outside the tests reaches a private name of another module."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("config", "audit", "unit_primitives", "subscriptions", "issuer")


def test_import_contracts_are_kept():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _is_project_module(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def _is_module_file(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_reaches(source: str, module: str) -> list[str]:
    """`from other import _name` and `other._name`, where `other` is another project module (a class's attributes,
    such as Django's documented `Model._meta`, are the class's own affair)."""
    tree = ast.parse(source)
    aliases = {}  # local name -> project module it stands for
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _is_project_module(alias.name):
                    aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and _is_project_module(node.module):
            for alias in node.names:
                if _private(alias.name) and node.module != module:
                    found.append(f"from {node.module} import {alias.name}")
                if _is_module_file(f"{node.module}.{alias.name}"):
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and _private(node.attr)
            and aliases[node.value.id] != module
        ):
            found.append(f"{aliases[node.value.id]}.{node.attr}")
    return found


def test_the_checker_sees_a_private_reach():
    assert private_reaches("from issuer.keys import selectors\nselectors._memo.clear()\n", "issuer.x") == [
        "issuer.keys.selectors._memo"
    ]
    assert private_reaches("from issuer.conf import _load\n", "issuer.x") == ["from issuer.conf import _load"]
    assert private_reaches("from django.db import models\nmodels._private\n", "issuer.x") == []
    assert private_reaches("self._value = 1\n", "issuer.x") == []


def test_no_module_reaches_a_private_name_of_another():
    offenders = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            found = private_reaches(path.read_text(), _module_name(path))
            if found:
                offenders[str(path.relative_to(ROOT))] = found
    assert offenders == {}
