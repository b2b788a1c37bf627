"""The 2026 catalog (issue 10, point 6): what each add-on grants in the shipped catalog, the Agent Platform's
audience, the promises the external conformance check relies on, and the system check that refuses an add-on
that grants nothing."""

import datetime as dt
import shutil
from pathlib import Path

import pytest
import yaml
from django.conf import settings as django_settings
from django.core.checks import run_checks

from tests.unit_primitives.test_catalog import ENTERPRISE_ONLY
from unit_primitives.catalog import get_catalog, load_catalog, reset_catalog_cache
from unit_primitives.checks import every_add_on_grants_something, idle_add_ons
from unit_primitives.scopes import granted_scopes

SHIPPED = Path(django_settings.CATALOG_PATH)
NOW = dt.datetime(2026, 11, 26, 12, tzinfo=dt.UTC)  # fixed: every cut-off of the catalog has passed
WORKFLOW_AUD = "gitlab-duo-workflow-service"

FREE = {"observability_all", "security_scans", "duo_workflow_execute_workflow", "duo_workflow_generate_token"}
CHAT_IDE = {
    "duo_chat",
    "documentation_search",
    "include_file_context",
    "include_snippet_context",
    "explain_code",
    "refactor_code",
    "fix_code",
    "write_tests",
}
CODE_SUGGESTIONS = {"code_suggestions", "complete_code", "generate_code"}
AGENT_PLATFORM = {"duo_agent_platform", "ai_gateway_model_provider_proxy"}
EMBEDDINGS = {"generate_embeddings_codebase"}  # semantic code search (issue 26): Duo Core, Pro or Enterprise
CORE = CODE_SUGGESTIONS | CHAT_IDE | EMBEDDINGS
PRO = CORE | {"duo_classic_chat"}
# issue 26: Duo Enterprise only, on Premium or Ultimate; measure_comment_temperature on Ultimate only
ENTERPRISE_2026 = {"ask_work_item", "include_local_git_context", "summarize_new_merge_request"}
ULTIMATE_ENTERPRISE = {"measure_comment_temperature"}
AMAZON_Q_FEATURES = (PRO - EMBEDDINGS) | {
    "summarize_new_merge_request",
    "summarize_issue_discussions",
    "summarize_comments",
    "review_merge_request",
    "troubleshoot_job",
    "explain_vulnerability",
    "resolve_vulnerability",
    "generate_commit_message",
    "glab_ask_git_command",
}


def grant(license_type, add_ons, version, at=NOW, catalog=None):
    return granted_scopes(
        license_type=license_type, active_add_ons=add_ons, gitlab_version=version, at=at, catalog=catalog
    )


def paid_scopes(license_type, add_ons, version):
    """What the add-ons grant on top of free access."""
    scopes = set(grant(license_type, add_ons, version).scopes)
    assert scopes >= FREE
    return scopes - FREE


@pytest.mark.parametrize(
    ("license_type", "add_ons", "version", "expected"),
    [
        # nothing bought: only free access
        ("ultimate", (), "19.1.0-ee", set()),
        (None, ("duo_enterprise",), "19.1.0-ee", set()),
        # Duo Core: Code Suggestions, Chat in IDEs and the IDE tools; the Agent Platform from 18.8
        ("premium", ("duo_core",), "18.8.0", CORE | AGENT_PLATFORM),
        ("ultimate", ("duo_core",), "18.8.0", CORE | AGENT_PLATFORM),
        ("premium", ("duo_core",), "18.6.0", CORE | {"ai_gateway_model_provider_proxy"}),
        ("ultimate", ("duo_core",), "18.0.0", CORE),
        # Duo Pro: adds Chat (Classic) to what Duo Core has, never a Duo Enterprise feature
        ("premium", ("duo_pro",), "17.11.0", PRO),
        ("premium", ("duo_pro",), "18.8.0", PRO | AGENT_PLATFORM),
        ("premium", ("duo_pro",), "16.8.0", CORE),  # Chat (Classic) needs 16.9
        # Duo Enterprise: everything but Amazon Q, including self-hosted models (17.9+)
        (
            "ultimate",
            ("duo_enterprise",),
            "17.11.0",
            PRO | ENTERPRISE_ONLY | ENTERPRISE_2026 | ULTIMATE_ENTERPRISE | {"self_hosted_models"},
        ),
        (
            "ultimate",
            ("duo_enterprise",),
            "18.8.0",
            PRO | ENTERPRISE_ONLY | ENTERPRISE_2026 | ULTIMATE_ENTERPRISE | {"self_hosted_models"} | AGENT_PLATFORM,
        ),
        ("premium", ("duo_enterprise",), "17.8.0", PRO | ENTERPRISE_ONLY | ENTERPRISE_2026),
        # GitLab Duo with Amazon Q: its own column of the feature summary, no Agent Platform
        ("ultimate", ("duo_amazon_q",), "18.8.0", AMAZON_Q_FEATURES | {"amazon_q_integration"}),
        ("ultimate", ("duo_amazon_q",), "17.7.0", AMAZON_Q_FEATURES),  # the integration needs 17.8
        ("premium", ("duo_amazon_q",), "18.8.0", AMAZON_Q_FEATURES),  # the integration is Ultimate only
        # GitLab Duo Self-Hosted: the self-hosted models entitlement, from 17.9
        ("ultimate", ("duo_self_hosted",), "18.8.0", {"self_hosted_models"}),
        ("premium", ("duo_self_hosted",), "17.9.0", {"self_hosted_models"}),
        ("ultimate", ("duo_self_hosted",), "17.8.0", set()),
        # GitLab Duo Agent Platform Self-Hosted: the Agent Platform (18.8+) on self-hosted models
        ("ultimate", ("self_hosted_dap",), "18.8.0", {"duo_agent_platform", "self_hosted_models"}),
        ("premium", ("self_hosted_dap",), "18.7.2", {"self_hosted_models"}),
        # product analytics: the product-analytics AI query
        ("ultimate", ("product_analytics",), "18.0.0", {"generate_cube_query"}),
        # add-ons add up
        ("ultimate", ("duo_core", "duo_self_hosted"), "18.8.0", CORE | AGENT_PLATFORM | {"self_hosted_models"}),
    ],
)
def test_scope_table(license_type, add_ons, version, expected):
    assert paid_scopes(license_type, add_ons, version) == expected


def test_every_listed_add_on_grants_something():
    catalog = get_catalog()
    assert idle_add_ons(catalog) == []
    for add_on in catalog.add_ons:
        assert paid_scopes("ultimate", (add_on,), "99.0.0"), add_on


def test_conformance_promises_hold():
    """The external conformance check (instances on 17.11.0): free scopes, and Duo Pro versus Enterprise."""
    conformance_pro = {
        "code_suggestions",
        "duo_chat",
        "documentation_search",
        "explain_code",
        "refactor_code",
        "fix_code",
        "write_tests",
        "include_file_context",
        "include_snippet_context",
    }
    conformance_enterprise_only = {
        "explain_vulnerability",
        "resolve_vulnerability",
        "review_merge_request",
        "summarize_merge_request",
        "troubleshoot_job",
        "generate_commit_message",
        "include_merge_request_context",
        "ask_issue",
    }
    conformance_free = {"observability_all", "security_scans", "duo_workflow_execute_workflow"}
    assert get_catalog().unit_primitives["duo_workflow_execute_workflow"].cut_off_date is None
    for license_type in ("premium", "ultimate", None):
        assert conformance_free <= set(grant(license_type, (), "17.11.0").scopes)
    pro = set(grant("premium", ("duo_pro",), "17.11.0").scopes)
    assert conformance_pro <= pro and not conformance_enterprise_only & pro
    enterprise = set(grant("ultimate", ("duo_enterprise",), "17.11.0").scopes)
    assert conformance_pro | conformance_enterprise_only | conformance_free <= enterprise


def test_new_entries_have_their_documented_attributes():
    primitives = get_catalog().unit_primitives
    expected = {
        # name: (backend services, add-ons, license types, cut-off, min version, min version for free access)
        "duo_agent_platform": (
            {"duo_workflow_service"},
            {"duo_core", "duo_pro", "duo_enterprise", "self_hosted_dap"},
            {"premium", "ultimate"},
            "2026-01-15",
            (18, 8, 0),
            (18, 2, 0),
        ),
        "duo_classic_chat": (
            {"ai_gateway"},
            {"duo_pro", "duo_enterprise", "duo_amazon_q"},
            {"premium", "ultimate"},
            "2024-10-17",
            (16, 9, 0),
            (16, 8, 0),
        ),
        "complete_code": (
            {"ai_gateway"},
            {"duo_core", "duo_pro", "duo_enterprise", "duo_amazon_q"},
            {"premium", "ultimate"},
            "2024-02-15",
            (16, 8, 0),
            None,
        ),
        "ai_gateway_model_provider_proxy": (
            {"ai_gateway"},
            {"duo_core", "duo_pro", "duo_enterprise"},
            {"premium", "ultimate"},
            "2026-01-15",
            (18, 6, 0),
            (18, 3, 0),
        ),
        "amazon_q_integration": (
            {"ai_gateway"},
            {"duo_amazon_q"},
            {"ultimate"},
            "2025-04-17",
            (17, 8, 0),
            (17, 7, 0),
        ),
        "self_hosted_models": (
            {"ai_gateway"},
            {"duo_enterprise", "duo_self_hosted", "self_hosted_dap"},
            {"premium", "ultimate"},
            "2024-10-17",
            (17, 9, 0),
            None,
        ),
    }
    expected["generate_code"] = expected["complete_code"]
    for name, (services, add_ons, licenses, cut_off, min_version, min_free) in expected.items():
        primitive = primitives[name]
        actual = (
            set(primitive.backend_services),
            set(primitive.add_ons),
            set(primitive.license_types),
            primitive.cut_off_date.isoformat(),
            primitive.min_version,
            primitive.min_version_for_free_access,
        )
        assert actual == (services, add_ons, licenses, f"{cut_off}T00:00:00+00:00", min_version, min_free), name


def test_agent_platform_grants_carry_the_workflow_service_audience():
    catalog = get_catalog()
    assert catalog.unit_primitives["duo_agent_platform"].backend_services == ("duo_workflow_service",)
    assert catalog.backend_services["duo_workflow_service"].jwt_aud == WORKFLOW_AUD
    for add_ons in (("duo_core",), ("duo_pro",), ("duo_enterprise",), ("self_hosted_dap",)):
        result = grant("premium", add_ons, "18.8.0")
        assert "duo_agent_platform" in result.scopes
        assert WORKFLOW_AUD in result.audiences and "gitlab-ai-gateway" in result.audiences


@pytest.fixture
def catalog_copy(tmp_path):
    folder = tmp_path / "catalog"
    shutil.copytree(SHIPPED, folder)
    return folder


def test_the_workflow_audience_comes_from_duo_agent_platform_itself(catalog_copy):
    """Without the free legacy workflow primitives, only duo_agent_platform can bring the audience."""
    for name in ("duo_workflow_execute_workflow", "duo_workflow_generate_token"):
        (catalog_copy / "unit_primitives" / f"{name}.yml").unlink()
    (catalog_copy / "services" / "duo_workflow.yml").unlink()
    catalog = load_catalog(catalog_copy)
    with_platform = grant("premium", ("duo_pro",), "18.8.0", catalog=catalog)
    before_18_8 = grant("premium", ("duo_pro",), "18.7.0", catalog=catalog)
    assert "duo_agent_platform" in with_platform.scopes and WORKFLOW_AUD in with_platform.audiences
    assert "duo_agent_platform" not in before_18_8.scopes and WORKFLOW_AUD not in before_18_8.audiences


def _errors_for(folder, settings) -> list:
    settings.CATALOG_PATH = folder
    reset_catalog_cache()
    try:
        return [message for message in run_checks() if message.id == "unit_primitives.E002"]
    finally:
        settings.CATALOG_PATH = SHIPPED
        reset_catalog_cache()


def test_system_check_accepts_the_shipped_catalog():
    assert every_add_on_grants_something() == []
    assert not [message for message in run_checks() if message.id == "unit_primitives.E002"]


def test_system_check_refuses_an_add_on_that_grants_nothing(catalog_copy, settings):
    path = catalog_copy / "add_ons" / "duo_platinum.yml"
    path.write_text("name: duo_platinum\ndescription: Sold, but grants nothing\n")
    errors = _errors_for(catalog_copy, settings)
    assert len(errors) == 1
    assert errors[0].msg == f"{path}: add-on 'duo_platinum' grants nothing: no unit primitive lists it in add_ons"


def test_system_check_names_every_add_on_left_granting_nothing(catalog_copy, settings):
    """Take Amazon Q and the self-hosted add-on off every unit primitive: both are reported, nothing else."""
    for path in (catalog_copy / "unit_primitives").glob("*.yml"):
        data = yaml.safe_load(path.read_text())
        kept = [name for name in data["add_ons"] if name not in ("duo_amazon_q", "duo_self_hosted")]
        if kept != data["add_ons"]:
            data["add_ons"] = kept
            path.write_text(yaml.safe_dump(data))
    errors = _errors_for(catalog_copy, settings)
    assert [error.msg.split(": ", 1)[1] for error in errors] == [
        "add-on 'duo_amazon_q' grants nothing: no unit primitive lists it in add_ons",
        "add-on 'duo_self_hosted' grants nothing: no unit primitive lists it in add_ons",
    ]
    assert errors[0].msg.startswith(str(catalog_copy / "add_ons" / "duo_amazon_q.yml"))


def test_system_check_leaves_an_invalid_catalog_to_e001(catalog_copy, settings):
    (catalog_copy / "add_ons" / "broken.yml").write_text("- not a mapping\n")
    assert _errors_for(catalog_copy, settings) == []
