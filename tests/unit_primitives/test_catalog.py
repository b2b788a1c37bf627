import shutil
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import CommandError, call_command

from unit_primitives.catalog import CatalogError, available_services, catalog_document, get_catalog, load_catalog

SHIPPED = Path(settings.CATALOG_PATH)

PRO = {
    "code_suggestions",
    "duo_chat",
    "documentation_search",
    "include_file_context",
    "include_snippet_context",
    "explain_code",
    "refactor_code",
    "fix_code",
    "write_tests",
}
ENTERPRISE_ONLY = {
    "include_merge_request_context",
    "include_issue_context",
    "include_dependency_context",
    "ask_build",
    "ask_commit",
    "ask_epic",
    "ask_issue",
    "ask_merge_request",
    "generate_issue_description",
    "explain_vulnerability",
    "resolve_vulnerability",
    "review_merge_request",
    "summarize_review",
    "summarize_issue_discussions",
    "summarize_merge_request",
    "summarize_comments",
    "troubleshoot_job",
    "generate_commit_message",
    "generate_cube_query",
    "glab_ask_git_command",
    "semantic_search_issue",
    "categorize_duo_chat_question",
}
FREE = {"observability_all", "security_scans", "duo_workflow_execute_workflow", "duo_workflow_generate_token"}
NEW_2026 = {
    "duo_agent_platform",
    "duo_classic_chat",
    "complete_code",
    "generate_code",
    "ai_gateway_model_provider_proxy",
    "amazon_q_integration",
    "self_hosted_models",
}
ROUND_2 = {  # issue 26
    "ask_work_item",
    "generate_embeddings_codebase",
    "summarize_new_merge_request",
    "measure_comment_temperature",
    "include_local_git_context",
}


def test_shipped_catalog_holds_every_real_entry():
    catalog = get_catalog()
    assert set(catalog.unit_primitives) == PRO | ENTERPRISE_ONLY | FREE | NEW_2026 | ROUND_2
    assert {name: service.jwt_aud for name, service in catalog.backend_services.items()} == {
        "ai_gateway": "gitlab-ai-gateway",
        "duo_workflow_service": "gitlab-duo-workflow-service",
        "observability_backend": "gitlab-observability-backend",
        "security_gateway": "gitlab-security-gateway",
    }
    assert set(catalog.add_ons) == {
        "duo_pro",
        "duo_enterprise",
        "duo_core",
        "duo_amazon_q",
        "duo_self_hosted",
        "product_analytics",
        "self_hosted_dap",
    }
    assert set(catalog.license_types) == {"premium", "ultimate"}
    assert catalog.unit_primitives["code_suggestions"].cut_off_date.isoformat() == "2024-02-15T00:00:00+00:00"
    assert all(
        catalog.unit_primitives[name].cut_off_date.isoformat() == "2024-10-17T00:00:00+00:00"
        for name in (PRO - {"code_suggestions"}) | ENTERPRISE_ONLY
    )
    # Duo Pro and Duo Enterprise both grant PRO; Duo Pro grants nothing of ENTERPRISE_ONLY (the 2026 add-ons
    # Duo Core, Amazon Q and product analytics also grant some of them: see test_catalog_2026.py)
    assert all({"duo_pro", "duo_enterprise"} <= set(catalog.unit_primitives[name].add_ons) for name in PRO)
    assert all("duo_enterprise" in catalog.unit_primitives[name].add_ons for name in ENTERPRISE_ONLY)
    assert not any("duo_pro" in catalog.unit_primitives[name].add_ons for name in ENTERPRISE_ONLY)
    assert all(catalog.unit_primitives[name].cut_off_date is None for name in FREE)
    grouped = {primitive for service in catalog.services.values() for primitive in service.unit_primitives}
    assert grouped == set(catalog.unit_primitives)


def test_validate_catalog_command_accepts_the_shipped_catalog(capsys):
    call_command("validate_catalog")
    assert "is valid: 47 unit_primitives, 4 backend_services, 7 add_ons" in capsys.readouterr().out


def test_catalog_document_lists_every_kind():
    document = catalog_document()
    assert set(document) == {"unit_primitives", "backend_services", "add_ons", "license_types", "services"}
    code = next(entry for entry in document["unit_primitives"] if entry["name"] == "code_suggestions")
    assert code["cut_off_date"] == "2024-02-15T00:00:00Z"
    assert code["backend_services"] == ["ai_gateway"]
    assert "min_version" not in code


def test_available_services_view():
    services = {service["name"]: service for service in available_services()}
    assert services["code_suggestions"] == {
        "name": "code_suggestions",
        "serviceStartTime": "2024-02-15T00:00:00Z",
        "bundledWith": ["duo_amazon_q", "duo_core", "duo_enterprise", "duo_pro"],
    }
    assert services["troubleshoot_job"]["bundledWith"] == ["duo_amazon_q", "duo_enterprise"]
    assert services["duo_workflow"] == {
        "name": "duo_workflow",
        "serviceStartTime": None,
        "bundledWith": ["duo_enterprise"],
    }
    assert services["duo_agent_platform"]["serviceStartTime"] == "2026-01-15T00:00:00Z"
    assert services["observability_all"]["serviceStartTime"] is None


@pytest.fixture
def broken(tmp_path):
    """A writable copy of the shipped catalog to break in one place."""
    folder = tmp_path / "catalog"
    shutil.copytree(SHIPPED, folder)
    return folder


def _problems(folder) -> list[str]:
    with pytest.raises(CatalogError) as error:
        load_catalog(folder)
    return error.value.problems


def test_bad_yaml_names_the_file(broken):
    path = broken / "unit_primitives" / "duo_chat.yml"
    path.write_text("name: duo_chat\ndescription: [unclosed\n")
    problems = _problems(broken)
    assert len(problems) >= 1
    assert problems[0].startswith(f"{path}: not valid YAML")


def test_missing_field_names_file_and_field(broken):
    path = broken / "backend_services" / "ai_gateway.yml"
    data = yaml.safe_load(path.read_text())
    del data["jwt_aud"]
    path.write_text(yaml.safe_dump(data))
    assert f"{path}: field '(top level)': 'jwt_aud' is a required property" in _problems(broken)


def test_wrong_type_names_the_field(broken):
    path = broken / "unit_primitives" / "fix_code.yml"
    data = yaml.safe_load(path.read_text())
    data["add_ons"] = "duo_pro"
    path.write_text(yaml.safe_dump(data))
    assert any(p.startswith(f"{path}: field 'add_ons':") for p in _problems(broken))


def test_unknown_reference_names_file_field_and_name(broken):
    path = broken / "unit_primitives" / "write_tests.yml"
    data = yaml.safe_load(path.read_text())
    data["add_ons"] = ["duo_pro", "duo_platinum"]
    path.write_text(yaml.safe_dump(data))
    assert f"{path}: field 'add_ons.1': unknown add_ons name 'duo_platinum'" in _problems(broken)


def test_unknown_backend_service_in_unit_primitive(broken):
    path = broken / "unit_primitives" / "security_scans.yml"
    data = yaml.safe_load(path.read_text())
    data["backend_services"] = ["nowhere"]
    path.write_text(yaml.safe_dump(data))
    assert f"{path}: field 'backend_services.0': unknown backend_services name 'nowhere'" in _problems(broken)


def test_duplicate_name_names_both_files(broken):
    original = broken / "add_ons" / "duo_pro.yml"
    copy = broken / "add_ons" / "duo_pro_again.yml"
    copy.write_text(original.read_text())
    problems = _problems(broken)
    assert f"{copy}: field 'name': duplicate add_ons name 'duo_pro' (also in {original})" in problems


def test_cut_off_date_needs_a_time_zone(broken):
    path = broken / "unit_primitives" / "duo_chat.yml"
    data = yaml.safe_load(path.read_text())
    data["cut_off_date"] = "2024-10-17T00:00:00"
    path.write_text(yaml.safe_dump(data))
    assert any("cut_off_date" in p and "time zone" in p and str(path) in p for p in _problems(broken))


def test_unknown_field_is_refused(broken):
    path = broken / "license_types" / "premium.yml"
    path.write_text("name: premium\ndescription: Premium\nprice: 29\n")
    assert any(p.startswith(f"{path}: field '(top level)': Additional properties") for p in _problems(broken))


def test_validate_catalog_command_fails_on_a_broken_folder(broken):
    (broken / "add_ons" / "duo_core.yml").write_text("- not a mapping\n")
    with pytest.raises(CommandError, match="duo_core.yml: must be a mapping"):
        call_command("validate_catalog", "--path", str(broken))


def test_system_check_fails_startup_on_invalid_catalog(broken, settings):
    from django.core.checks import run_checks

    from unit_primitives.catalog import reset_catalog_cache

    (broken / "services" / "duo_chat.yml").write_text("name: duo_chat\n")
    settings.CATALOG_PATH = broken
    reset_catalog_cache()
    try:
        errors = [m for m in run_checks() if m.id == "unit_primitives.E001"]
    finally:
        settings.CATALOG_PATH = SHIPPED
        reset_catalog_cache()
    assert errors and "services/duo_chat.yml" in errors[0].msg
