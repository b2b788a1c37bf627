"""The 2026 catalog, round 2 (issue 26): the five unit primitives the AI gateway checks for, carried by the token of
an entitled subscription and only by it; and the legacy `availableServices` view computed as GitLab's generator
(gitlab-cloud-connector's AvailableServicesGenerator) computes `available_services`."""

import shutil
import uuid
from pathlib import Path

import jwt
import pytest
import yaml
from django.conf import settings as django_settings

from subscriptions.services import instance_activate
from tests.factories import AddOnPurchaseFactory, SubscriptionFactory
from tests.helpers import sync
from unit_primitives.catalog import available_services, load_catalog, reset_catalog_cache

SHIPPED = Path(django_settings.CATALOG_PATH)
VERSION = "19.1.0-ee"  # past every min_gitlab_version of the catalog


# unit primitive: ((license type, add-on) that grants it, (license type, add-on) that does not)
ENTITLEMENTS = {
    "ask_work_item": (("premium", "duo_enterprise"), ("ultimate", "duo_pro")),
    "include_local_git_context": (("ultimate", "duo_enterprise"), ("premium", "duo_pro")),
    "generate_embeddings_codebase": (("premium", "duo_core"), ("ultimate", "duo_amazon_q")),
    "summarize_new_merge_request": (("ultimate", "duo_amazon_q"), ("ultimate", "duo_core")),
    "measure_comment_temperature": (("ultimate", "duo_enterprise"), ("premium", "duo_enterprise")),
}


def token_scopes(client, license_type: str, add_on: str) -> set[str]:
    """Scopes of the token a GitLab instance gets by activating and syncing for the subscription."""
    subscription = SubscriptionFactory(license_type=license_type)
    AddOnPurchaseFactory(subscription=subscription, add_on=add_on, quantity=5)
    activation = instance_activate(
        activation_code=subscription.activation_code,
        instance_identifier=str(uuid.uuid4()),
        hostname="gitlab.example.test",
        gitlab_version=VERSION,
    )
    response, body = sync(client, activation.license_key, gitlab_version=VERSION)
    assert response.status_code == 200 and "errors" not in body, body
    token = body["data"]["cloudConnectorAccess"]["serviceToken"]["token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert "gitlab-ai-gateway" in claims["aud"]
    return set(claims["scopes"])


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(ENTITLEMENTS))
def test_entitled_token_carries_it_unentitled_does_not(client, signing_key, name):
    entitled, unentitled = ENTITLEMENTS[name]
    assert name in token_scopes(client, *entitled)
    assert name not in token_scopes(client, *unentitled)


def test_round_2_entries_as_sourced():
    """What each file says: the AI gateway is their backend, nothing of them is free, who grants them."""
    from unit_primitives.catalog import get_catalog

    catalog = get_catalog()
    expected = {
        "ask_work_item": ({"duo_enterprise"}, {"premium", "ultimate"}, "duo_chat"),
        "include_local_git_context": ({"duo_enterprise"}, {"premium", "ultimate"}, "duo_chat"),
        "generate_embeddings_codebase": (
            {"duo_core", "duo_pro", "duo_enterprise"},
            {"premium", "ultimate"},
            "generate_embeddings_codebase",
        ),
        "summarize_new_merge_request": (
            {"duo_enterprise", "duo_amazon_q"},
            {"premium", "ultimate"},
            "review_merge_request",
        ),
        "measure_comment_temperature": ({"duo_enterprise"}, {"ultimate"}, "measure_comment_temperature"),
    }
    for name, (add_ons, licenses, service) in expected.items():
        primitive = catalog.unit_primitives[name]
        assert primitive.backend_services == ("ai_gateway",), name
        assert primitive.cut_off_date.isoformat() == "2024-10-17T00:00:00+00:00", name
        assert (set(primitive.add_ons), set(primitive.license_types)) == (add_ons, licenses), name
        assert name in catalog.services[service].unit_primitives, name


def gitlab_rule(folder: Path) -> dict[str, dict]:
    """GitLab's generator for the self-managed realm, restated over the raw YAML files."""

    def read(kind):
        entries = (yaml.safe_load(path.read_text()) for path in sorted((folder / kind).glob("*.yml")))
        return {entry["name"]: entry for entry in entries}

    primitives, services = read("unit_primitives"), read("services")

    def start(primitive):
        cut_off = primitive.get("cut_off_date")
        return str(cut_off).replace("+00:00", "Z") if cut_off else None

    def config(names, basic=None):
        sample = primitives[basic if basic in names else names[0]]
        bundled = sorted({add_on for name in names for add_on in primitives[name]["add_ons"]})
        return {"serviceStartTime": start(sample), "bundledWith": bundled}

    out = {}
    for name, service in services.items():
        realms = service.get("gitlab_realm")
        if realms and "self-managed" not in realms:
            continue
        out[name] = config(service["unit_primitives"], service.get("basic_unit_primitive"))
        if name == "self_hosted_models":
            out[name]["bundledWith"] = ["duo_enterprise"]
    for name in primitives:
        if name not in services:
            out[name] = config([name])
    return out


def view_of(services) -> dict[str, dict]:
    return {entry["name"]: {key: entry[key] for key in ("serviceStartTime", "bundledWith")} for entry in services}


@pytest.mark.django_db
def test_available_services_on_the_wire_match_gitlabs_rule(client, signing_key):
    """Every service and every unit primitive no service is named after, as the sync answers them."""
    subscription = SubscriptionFactory(license_type="ultimate")
    AddOnPurchaseFactory(subscription=subscription, add_on="duo_enterprise")
    activation = instance_activate(
        activation_code=subscription.activation_code,
        instance_identifier=str(uuid.uuid4()),
        hostname="gitlab.example.test",
        gitlab_version=VERSION,
    )
    _, body = sync(client, activation.license_key, gitlab_version=VERSION)
    services = body["data"]["cloudConnectorAccess"]["availableServices"]
    assert [entry["name"] for entry in services] == sorted(entry["name"] for entry in services)
    assert view_of(services) == gitlab_rule(SHIPPED)


def test_available_services_per_service():
    """The answers that changed with the rule, and the ones the issue names."""
    view = view_of(available_services())
    # bundled with duo_enterprise only, though duo_self_hosted and self_hosted_dap grant the unit primitive
    assert view["self_hosted_models"] == {"serviceStartTime": "2024-10-17T00:00:00Z", "bundledWith": ["duo_enterprise"]}
    # a unit primitive inside another service is also a service of its own
    assert view["include_file_context"] == {
        "serviceStartTime": "2024-10-17T00:00:00Z",
        "bundledWith": ["duo_amazon_q", "duo_core", "duo_enterprise", "duo_pro"],
    }
    assert view["summarize_new_merge_request"]["bundledWith"] == ["duo_amazon_q", "duo_enterprise"]
    assert view["measure_comment_temperature"] == {
        "serviceStartTime": "2024-10-17T00:00:00Z",
        "bundledWith": ["duo_enterprise"],
    }
    # free services have no start time and no placeholder add-on
    assert view["security_scans"] == {"serviceStartTime": None, "bundledWith": []}
    assert view["duo_workflow"]["serviceStartTime"] is None


@pytest.fixture
def catalog_copy(tmp_path, settings):
    folder = tmp_path / "catalog"
    shutil.copytree(SHIPPED, folder)
    settings.CATALOG_PATH = folder
    reset_catalog_cache()
    yield folder
    settings.CATALOG_PATH = SHIPPED
    reset_catalog_cache()


def _edit(path: Path, **fields):
    data = yaml.safe_load(path.read_text())
    data.update(fields)
    path.write_text(yaml.safe_dump(data))


def test_start_time_is_the_basic_unit_primitives_not_the_earliest(catalog_copy):
    """duo_workflow with duo_agent_platform in it: free, as its basic unit primitive is (the old rule took the
    earliest cut-off, 2026-01-15); a basic unit primitive named explicitly wins over the first one."""
    services = catalog_copy / "services"
    _edit(
        services / "duo_workflow.yml",
        unit_primitives=["duo_workflow_execute_workflow", "duo_workflow_generate_token", "duo_agent_platform"],
    )
    view = view_of(available_services())
    assert view["duo_workflow"]["serviceStartTime"] is None
    assert "duo_core" in view["duo_workflow"]["bundledWith"]
    _edit(services / "duo_workflow.yml", basic_unit_primitive="duo_agent_platform")
    reset_catalog_cache()
    assert view_of(available_services())["duo_workflow"]["serviceStartTime"] == "2026-01-15T00:00:00Z"
    assert view_of(available_services()) == gitlab_rule(catalog_copy)


def test_a_service_outside_the_self_managed_realm_is_left_out(catalog_copy):
    _edit(catalog_copy / "services" / "generate_cube_query.yml", gitlab_realm=["gitlab-com"])
    view = view_of(available_services())
    assert "generate_cube_query" not in view  # nor as a stand-alone unit primitive: a service bears its name
    assert view == gitlab_rule(catalog_copy)


def test_basic_unit_primitive_must_be_one_of_the_services(catalog_copy):
    from unit_primitives.catalog import CatalogError

    path = catalog_copy / "services" / "duo_chat.yml"
    _edit(path, basic_unit_primitive="troubleshoot_job")
    with pytest.raises(CatalogError) as error:
        load_catalog(catalog_copy)
    assert error.value.problems == [
        f"{path}: field 'basic_unit_primitive': 'troubleshoot_job' is not one of the service's unit_primitives"
    ]


def test_gitlab_realm_names_a_known_realm(catalog_copy):
    from unit_primitives.catalog import CatalogError

    path = catalog_copy / "services" / "duo_chat.yml"
    _edit(path, gitlab_realm=["dedicated"])
    with pytest.raises(CatalogError) as error:
        load_catalog(catalog_copy)
    assert len(error.value.problems) == 1 and "gitlab_realm.0" in error.value.problems[0]


def test_every_shipped_service_names_its_basic_unit_primitive_and_realms():
    for path in sorted((SHIPPED / "services").glob("*.yml")):
        data = yaml.safe_load(path.read_text())
        assert data["basic_unit_primitive"] in data["unit_primitives"], path
        assert data["gitlab_realm"] == ["gitlab-com", "self-managed"], path
