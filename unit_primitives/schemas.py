"""JSON Schemas of the catalog's five kinds of file (PROTOCOL §5)."""

_NAME = {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"}
_NAMES = {"type": "array", "items": _NAME, "uniqueItems": True}
_TEXT = {"type": "string", "minLength": 1}
_URL = {"type": "string", "pattern": "^https?://"}
_VERSION = {"type": "string", "pattern": r"^\d+\.\d+(\.\d+)?$"}
_DATETIME = {"type": "string", "format": "date-time"}
GITLAB_REALMS = ("gitlab-com", "self-managed")


def _object(required, optional=None):
    properties = {**required, **(optional or {})}
    return {
        "type": "object",
        "properties": properties,
        "required": sorted(required),
        "additionalProperties": False,
    }


SCHEMAS = {
    "unit_primitives": _object(
        {
            "name": _NAME,
            "description": _TEXT,
            "group": _TEXT,
            "feature_category": _TEXT,
            "documentation_url": _URL,
            "backend_services": {**_NAMES, "minItems": 1},
            "add_ons": _NAMES,
            "license_types": _NAMES,
        },
        {
            "cut_off_date": _DATETIME,
            "min_gitlab_version": _VERSION,
            "min_gitlab_version_for_free_access": _VERSION,
            "introduced_by_url": _URL,
            "milestone": {"type": "string"},
            "deprecated_by_url": _URL,
            "deprecation_message": _TEXT,
        },
    ),
    "backend_services": _object(
        {"name": _NAME, "jwt_aud": _TEXT, "description": _TEXT, "project_url": _URL, "group": _TEXT}
    ),
    "add_ons": _object({"name": _NAME, "description": _TEXT}),
    "license_types": _object({"name": _NAME, "description": _TEXT}),
    # basic_unit_primitive and gitlab_realm: GitLab's service data model (gitlab-cloud-connector's
    # DataModel::Service); the generator of the legacy view reads them (catalog.available_services).
    "services": _object(
        {"name": _NAME, "description": _TEXT, "unit_primitives": {**_NAMES, "minItems": 1}},
        {
            "basic_unit_primitive": _NAME,
            "gitlab_realm": {
                "type": "array",
                "items": {"enum": list(GITLAB_REALMS)},
                "uniqueItems": True,
                "minItems": 1,
            },
        },
    ),
}
