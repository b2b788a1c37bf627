"""The catalog: YAML files read and validated once into immutable objects.

`get_catalog()` is the one loaded catalog of the process (from `settings.CATALOG_PATH`); `load_catalog(path)`
reads any folder and raises `CatalogError` listing every problem, each naming the file, the field and the reason.
"""

import datetime as dt
import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import yaml
from django.conf import settings

from unit_primitives.schemas import SCHEMAS
from unit_primitives.versions import parse_version

KINDS = ("unit_primitives", "backend_services", "add_ons", "license_types", "services")


class CatalogError(Exception):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("Invalid unit-primitive catalog:\n" + "\n".join(problems))


@dataclass(frozen=True)
class BackendService:
    name: str
    jwt_aud: str
    description: str
    project_url: str
    group: str


@dataclass(frozen=True)
class AddOn:
    name: str
    description: str


@dataclass(frozen=True)
class LicenseType:
    name: str
    description: str


@dataclass(frozen=True)
class Service:
    name: str
    description: str
    unit_primitives: tuple[str, ...]
    basic_unit_primitive: str | None = None  # whose cut-off the legacy view shows; None = the first one
    gitlab_realm: tuple[str, ...] | None = None  # where the service exists; None = everywhere

    @property
    def basic(self) -> str:
        return self.basic_unit_primitive or self.unit_primitives[0]


@dataclass(frozen=True)
class UnitPrimitive:
    name: str
    description: str
    group: str
    feature_category: str
    documentation_url: str
    backend_services: tuple[str, ...]
    add_ons: tuple[str, ...]
    license_types: tuple[str, ...]
    cut_off_date: dt.datetime | None = None
    min_gitlab_version: str | None = None
    min_gitlab_version_for_free_access: str | None = None
    introduced_by_url: str | None = None
    milestone: str | None = None
    deprecated_by_url: str | None = None
    deprecation_message: str | None = None
    min_version: tuple[int, int, int] | None = field(default=None, compare=False, repr=False)
    min_version_for_free_access: tuple[int, int, int] | None = field(default=None, compare=False, repr=False)


_ENTRY_CLASSES = {
    "unit_primitives": UnitPrimitive,
    "backend_services": BackendService,
    "add_ons": AddOn,
    "license_types": LicenseType,
    "services": Service,
}


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one loaded catalog is one value
class Catalog:
    unit_primitives: dict[str, UnitPrimitive]
    backend_services: dict[str, BackendService]
    add_ons: dict[str, AddOn]
    license_types: dict[str, LicenseType]
    services: dict[str, Service]
    digest: str  # changes whenever any file's content changes; part of every entitlement fingerprint


def _plain(value):
    """YAML turns unquoted timestamps into datetimes; the schema checks strings, so give it strings back."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _parse_datetime(text: str) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.astimezone(dt.UTC) if parsed.tzinfo else None


def _read_entries(root: Path, problems: list[str], hasher) -> dict[str, dict[str, tuple[Path, dict]]]:
    entries: dict[str, dict[str, tuple[Path, dict]]] = {kind: {} for kind in KINDS}
    validators = {kind: jsonschema.Draft202012Validator(SCHEMAS[kind]) for kind in KINDS}
    if not root.is_dir():
        problems.append(f"{root}: catalog folder does not exist")
        return entries
    for kind in KINDS:
        folder = root / kind
        if not folder.is_dir():
            problems.append(f"{folder}: missing folder for {kind}")
            continue
        for path in sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]):
            raw = path.read_bytes()
            hasher.update(f"{kind}/{path.name}\0".encode() + raw + b"\0")
            try:
                data = _plain(yaml.safe_load(raw))
            except yaml.YAMLError as error:
                problems.append(f"{path}: not valid YAML: {str(error).splitlines()[0]}")
                continue
            if not isinstance(data, dict):
                problems.append(f"{path}: must be a mapping of fields, got {type(data).__name__}")
                continue
            errors = sorted(validators[kind].iter_errors(data), key=lambda error: list(error.path))
            for error in errors:
                where = ".".join(str(part) for part in error.path) or "(top level)"
                problems.append(f"{path}: field '{where}': {error.message}")
            if errors:
                continue
            cut_off = data.get("cut_off_date") if kind == "unit_primitives" else None
            if cut_off is not None and _parse_datetime(cut_off) is None:
                problems.append(f"{path}: field 'cut_off_date': {cut_off!r} is not a date-time with a time zone")
                continue
            name = data["name"]
            if name in entries[kind]:
                problems.append(
                    f"{path}: field 'name': duplicate {kind} name {name!r} (also in {entries[kind][name][0]})"
                )
                continue
            entries[kind][name] = (path, data)
    return entries


def _check_references(entries, problems: list[str]) -> None:
    references = {
        "unit_primitives": {
            "backend_services": "backend_services",
            "add_ons": "add_ons",
            "license_types": "license_types",
        },
        "services": {"unit_primitives": "unit_primitives"},
    }
    for kind, fields in references.items():
        for path, data in entries[kind].values():
            for field_name, target in fields.items():
                for position, name in enumerate(data.get(field_name, [])):
                    if name not in entries[target]:
                        problems.append(f"{path}: field '{field_name}.{position}': unknown {target} name {name!r}")
    for path, data in entries["services"].values():
        basic = data.get("basic_unit_primitive")
        if basic is not None and basic not in data["unit_primitives"]:
            problems.append(
                f"{path}: field 'basic_unit_primitive': {basic!r} is not one of the service's unit_primitives"
            )


def _build(kind: str, data: dict):
    data = dict(data)
    for key, value in data.items():
        if isinstance(value, list):
            data[key] = tuple(value)
    if kind == "unit_primitives":
        if "cut_off_date" in data:
            data["cut_off_date"] = _parse_datetime(data["cut_off_date"])
        data["min_version"] = parse_version(data.get("min_gitlab_version"))
        data["min_version_for_free_access"] = parse_version(data.get("min_gitlab_version_for_free_access"))
    return _ENTRY_CLASSES[kind](**data)


def load_catalog(path: Path | str) -> Catalog:
    root = Path(path)
    problems: list[str] = []
    hasher = hashlib.sha256()
    entries = _read_entries(root, problems, hasher)
    _check_references(entries, problems)
    if problems:
        raise CatalogError(problems)
    built = {kind: {name: _build(kind, data) for name, (_, data) in sorted(entries[kind].items())} for kind in KINDS}
    return Catalog(**built, digest=hasher.hexdigest()[:16])


@functools.cache
def get_catalog() -> Catalog:
    return load_catalog(settings.CATALOG_PATH)


def iso_utc(moment: dt.datetime) -> str:
    """ISO 8601 with a "Z", as GitLab's own answers write UTC times."""
    return moment.isoformat().replace("+00:00", "Z")


@functools.cache
def catalog_document() -> dict:
    """The `catalog` JSON of the sync answer: each kind as a list of its entries' attributes."""
    catalog = get_catalog()

    def attributes(entry) -> dict:
        out = {}
        for name, value in vars(entry).items():
            if name in ("min_version", "min_version_for_free_access") or value is None:
                continue
            if isinstance(value, dt.datetime):
                value = iso_utc(value)
            out[name] = list(value) if isinstance(value, tuple) else value
        return out

    return {kind: [attributes(entry) for entry in getattr(catalog, kind).values()] for kind in KINDS}


SELF_MANAGED = "self-managed"


def _service_view(name: str, primitives: list[UnitPrimitive], basic: UnitPrimitive) -> dict:
    cut_off = basic.cut_off_date
    add_ons = sorted({add_on for primitive in primitives for add_on in primitive.add_ons})
    return {"name": name, "serviceStartTime": iso_utc(cut_off) if cut_off else None, "bundledWith": add_ons}


@functools.cache
def available_services() -> tuple[dict, ...]:
    """The legacy `availableServices` view, built as GitLab's generator (gitlab-cloud-connector's
    `AvailableServicesGenerator`, realm self-managed) builds `available_services`:

    - a service whose `gitlab_realm` leaves out self-managed is left out;
    - a service starts at its basic unit primitive's cut-off (`basic_unit_primitive`, else its first one), null when
      that one has none, i.e. free access; it is bundled with every add-on that grants any of its unit primitives,
      except `self_hosted_models`, bundled with `duo_enterprise` only;
    - every unit primitive that no service is named after is a stand-alone service of its own.

    `bundledWith` lists add-on names, sorted; GitLab's `_irrelevant` key (for unit primitives no add-on grants) names
    no add-on and is left out.
    """
    catalog = get_catalog()
    primitives = catalog.unit_primitives
    views = {}
    for service in catalog.services.values():
        if service.gitlab_realm is not None and SELF_MANAGED not in service.gitlab_realm:
            continue
        members = [primitives[name] for name in service.unit_primitives]
        view = _service_view(service.name, members, primitives[service.basic])
        if service.name == "self_hosted_models":
            view["bundledWith"] = [name for name in view["bundledWith"] if name == "duo_enterprise"]
        views[service.name] = view
    for primitive in primitives.values():
        if primitive.name not in catalog.services:
            views[primitive.name] = _service_view(primitive.name, [primitive], primitive)
    return tuple(views[name] for name in sorted(views))


def reset_catalog_cache() -> None:
    """For tests that point CATALOG_PATH elsewhere."""
    for cached in (get_catalog, catalog_document, available_services):
        cached.cache_clear()
