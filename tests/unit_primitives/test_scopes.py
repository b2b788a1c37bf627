"""Table-driven tests of PROTOCOL §5 against a small catalog made for the purpose, plus the shipped one."""

import datetime as dt
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unit_primitives.catalog import get_catalog, load_catalog
from unit_primitives.scopes import granted_scopes
from unit_primitives.versions import parse_version, version_at_least

CUT_OFF = dt.datetime(2024, 10, 17, tzinfo=dt.UTC)
BEFORE = CUT_OFF - dt.timedelta(seconds=1)
AFTER = CUT_OFF + dt.timedelta(days=30)


def _write(folder, kind, name, body):
    path = folder / kind / f"{name}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body))


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    folder = tmp_path_factory.mktemp("catalog")
    for name, aud in (("gw", "aud-gw"), ("other", "aud-other")):
        _write(
            folder,
            "backend_services",
            name,
            f"""
            name: {name}
            jwt_aud: {aud}
            description: d
            project_url: https://example.test
            group: g
        """,
        )
    for name in ("pro", "ent"):
        _write(folder, "add_ons", name, f"name: {name}\ndescription: d\n")
    for name in ("premium", "ultimate"):
        _write(folder, "license_types", name, f"name: {name}\ndescription: d\n")
    common = "description: d\ngroup: g\nfeature_category: f\ndocumentation_url: https://example.test\n"
    primitives = {
        "paid_pro": "backend_services: [gw]\nadd_ons: [pro, ent]\nlicense_types: [premium, ultimate]\ncut_off_date: 2024-10-17T00:00:00Z\n",
        "paid_ent": "backend_services: [gw]\nadd_ons: [ent]\nlicense_types: [ultimate]\ncut_off_date: 2024-10-17T00:00:00Z\n",
        "paid_gated": "backend_services: [gw]\nadd_ons: [pro]\nlicense_types: [premium]\ncut_off_date: 2024-10-17T00:00:00Z\nmin_gitlab_version: '17.10'\n",
        "free": "backend_services: [other]\nadd_ons: []\nlicense_types: [premium]\n",
        "free_gated": "backend_services: [other]\nadd_ons: []\nlicense_types: []\nmin_gitlab_version_for_free_access: '17.9'\n",
        "free_until_future": "backend_services: [gw]\nadd_ons: [ent]\nlicense_types: [ultimate]\ncut_off_date: 2099-01-01T00:00:00Z\n",
    }
    for name, body in primitives.items():
        _write(folder, "unit_primitives", name, f"name: {name}\n{common}{body}")
    _write(folder, "services", "all", "name: all\ndescription: d\nunit_primitives: [paid_pro, free]\n")
    return load_catalog(folder)


def scopes(catalog, license_type="ultimate", add_ons=(), version="17.11.0", at=AFTER):
    return set(
        granted_scopes(
            license_type=license_type, active_add_ons=add_ons, gitlab_version=version, at=at, catalog=catalog
        ).scopes
    )


ALWAYS_FREE = {"free", "free_gated", "free_until_future"}


@pytest.mark.parametrize(
    ("license_type", "add_ons", "version", "at", "expected"),
    [
        # before the cut-off everything is free (gates for free access still apply)
        (None, (), "17.11.0", BEFORE, {"paid_pro", "paid_ent", "paid_gated"} | ALWAYS_FREE),
        # the cut-off instant itself is no longer free
        ("ultimate", (), "17.11.0", CUT_OFF, ALWAYS_FREE),
        ("ultimate", ("pro",), "17.11.0", CUT_OFF, {"paid_pro"} | ALWAYS_FREE),
        # paid: license type AND an add-on AND the version
        ("ultimate", ("ent",), "17.11.0", AFTER, {"paid_pro", "paid_ent"} | ALWAYS_FREE),
        ("premium", ("ent",), "17.11.0", AFTER, {"paid_pro"} | ALWAYS_FREE),  # paid_ent needs ultimate
        ("premium", ("pro",), "17.11.0", AFTER, {"paid_pro", "paid_gated"} | ALWAYS_FREE),
        ("premium", ("pro",), "17.9.5", AFTER, {"paid_pro"} | ALWAYS_FREE),  # paid_gated needs 17.10
        ("premium", ("pro",), "17.10.0-ee", AFTER, {"paid_pro", "paid_gated"} | ALWAYS_FREE),
        ("premium", ("pro",), "17.8.0", AFTER, {"paid_pro"} | {"free", "free_until_future"}),  # free_gated needs 17.9
        # unknown version: nothing gated
        ("premium", ("pro",), None, AFTER, {"paid_pro", "free", "free_until_future"}),
        ("premium", ("pro",), "nightly", AFTER, {"paid_pro", "free", "free_until_future"}),
        # no license type: only free access
        (None, ("pro", "ent"), "17.11.0", AFTER, ALWAYS_FREE),
        # no add-on: only free access
        ("ultimate", (), "17.11.0", AFTER, ALWAYS_FREE),
    ],
)
def test_rules(catalog, license_type, add_ons, version, at, expected):
    assert scopes(catalog, license_type, add_ons, version, at) == expected


def test_audiences_follow_the_granted_scopes(catalog):
    grant = granted_scopes(
        license_type="ultimate", active_add_ons=["ent"], gitlab_version="17.11", at=AFTER, catalog=catalog
    )
    assert grant.audiences == ("aud-gw", "aud-other")
    unlicensed = granted_scopes(license_type=None, active_add_ons=[], gitlab_version="17.8", at=AFTER, catalog=catalog)
    assert unlicensed.scopes == ("free", "free_until_future")
    assert unlicensed.audiences == ("aud-gw", "aud-other")


def test_naive_moment_is_refused(catalog):
    with pytest.raises(ValueError, match="timezone-aware"):
        granted_scopes(
            license_type=None, active_add_ons=[], gitlab_version=None, at=dt.datetime(2025, 1, 1), catalog=catalog
        )


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("17.11.0", (17, 11, 0)),
        ("17.10", (17, 10, 0)),
        ("17.11.0-ee", (17, 11, 0)),
        ("17.11.0-pre", (17, 11, 0)),
        ("v16.3.2", (16, 3, 2)),
        ("", None),
        (None, None),
        ("garbage", None),
    ],
)
def test_version_parsing(text, parsed):
    assert parse_version(text) == parsed


def test_versions_compare_numerically():
    assert version_at_least(parse_version("17.10"), parse_version("17.9"))
    assert not version_at_least(parse_version("17.9.9"), parse_version("17.10"))
    assert version_at_least(None, None)
    assert not version_at_least(None, (1, 0, 0))


NOW = dt.datetime(2026, 11, 26, 12, tzinfo=dt.UTC)
SHIPPED_FREE = {"observability_all", "security_scans", "duo_workflow_execute_workflow", "duo_workflow_generate_token"}


@pytest.mark.parametrize("license_type", ["premium", "ultimate", None])
def test_shipped_free_primitives_for_every_subscription(license_type):
    assert scopes(get_catalog(), license_type, (), "17.11.0", NOW) == SHIPPED_FREE


def test_shipped_duo_pro_versus_enterprise():
    catalog = get_catalog()
    pro = scopes(catalog, "premium", ("duo_pro",), "17.11.0", NOW)
    ent = scopes(catalog, "ultimate", ("duo_enterprise",), "17.11.0", NOW)
    assert "code_suggestions" in pro and "troubleshoot_job" not in pro
    assert pro < ent and {"troubleshoot_job", "review_merge_request"} <= ent
    core = scopes(catalog, "ultimate", ("duo_core",), "17.11.0", NOW)
    assert "code_suggestions" in core and "troubleshoot_job" not in core and "duo_classic_chat" not in core


def test_code_suggestions_cut_off_is_earlier():
    catalog = get_catalog()
    between = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
    assert "code_suggestions" not in scopes(catalog, "premium", (), "17.0.0", between)
    assert "duo_chat" in scopes(catalog, "premium", (), "17.0.0", between)


ADD_ONS = [
    "duo_pro",
    "duo_enterprise",
    "duo_core",
    "duo_amazon_q",
    "duo_self_hosted",
    "product_analytics",
    "self_hosted_dap",
]


@settings(max_examples=200, deadline=None)
@given(
    license_type=st.sampled_from(["premium", "ultimate", None]),
    held=st.sets(st.sampled_from(ADD_ONS)),
    extra=st.sets(st.sampled_from(ADD_ONS)),
    version=st.sampled_from([None, "16.0.0", "17.9.0", "17.10.0", "18.2.1-ee", "18.8.0", "19.1.0-ee"]),
    at=st.datetimes(min_value=dt.datetime(2023, 1, 1), max_value=dt.datetime(2027, 1, 1), timezones=st.just(dt.UTC)),
)
def test_scopes_only_grow_when_add_ons_are_added(license_type, held, extra, version, at):
    catalog = get_catalog()
    before = granted_scopes(
        license_type=license_type, active_add_ons=held, gitlab_version=version, at=at, catalog=catalog
    )
    after = granted_scopes(
        license_type=license_type, active_add_ons=held | extra, gitlab_version=version, at=at, catalog=catalog
    )
    assert set(before.scopes) <= set(after.scopes)
    assert set(before.audiences) <= set(after.audiences)
