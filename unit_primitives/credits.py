"""GitLab Credits in the catalog: what each plan includes and what each billable event costs.

Two folders under `<catalog>/credits/`, each one YAML file an entry, schema-checked like the rest of the catalog:

- `plans/<license type>.yml`: the credits a plan includes per seat and UTC calendar month, with their source;
- `event_types/<event_type>.yml`: what entitles the event (a unit primitive or an add-on of the catalog) and its
  prices, credits per unit of each `unit_of_measure` it is metered in, each with its source. An event type without
  prices is one the quota check is asked about but nothing is billed as (`duo_agent_platform_workflow_on_execute`).

Amounts are decimal strings (`Decimal`, never float). Kept out of the sync answer's `catalog` document: prices are
the portal's, not the instance's."""

import functools
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import jsonschema
import yaml
from django.conf import settings

from unit_primitives.catalog import Catalog, CatalogError, get_catalog

_NAME = {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"}
_AMOUNT = {"type": "string", "pattern": r"^\d{1,9}(\.\d{1,6})?$"}
_URL = {"type": "string", "pattern": "^https?://"}
PLAN_SCHEMA = {
    "type": "object",
    "properties": {"license_type": _NAME, "included_credits_per_seat_month": _AMOUNT, "source": _URL, "note": {}},
    "required": ["license_type", "included_credits_per_seat_month", "source"],
    "additionalProperties": False,
}
EVENT_TYPE_SCHEMA = {
    "type": "object",
    "properties": {
        "event_type": _NAME,
        "description": {"type": "string", "minLength": 1},
        "entitled_by": {
            "type": "object",
            "properties": {"unit_primitive": _NAME, "add_on": _NAME},
            "minProperties": 1,
            "maxProperties": 1,
            "additionalProperties": False,
        },
        "prices": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {"unit_of_measure": _NAME, "credits_per_unit": _AMOUNT, "source": _URL, "note": {}},
                "required": ["unit_of_measure", "credits_per_unit", "source"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["event_type", "description", "entitled_by"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class EventType:
    name: str
    description: str
    unit_primitive: str | None  # the unit primitive that entitles it, or
    add_on: str | None  # the add-on that does
    prices: dict[str, Decimal]  # unit_of_measure -> credits per unit


@dataclass(frozen=True)
class CreditCatalog:
    included_per_seat_month: dict[str, Decimal]  # license type -> credits per seat and month
    event_types: dict[str, EventType]

    def price(self, event_type: str, unit_of_measure: str) -> Decimal | None:
        entry = self.event_types.get(event_type)
        return entry.prices.get(unit_of_measure) if entry else None


def _entries(folder: Path, schema: dict, problems: list[str]) -> list[tuple[Path, dict]]:
    validator = jsonschema.Draft202012Validator(schema)
    found = []
    for path in sorted(folder.glob("*.yml")) if folder.is_dir() else []:
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            problems.append(f"{path}: not valid YAML: {str(error).splitlines()[0]}")
            continue
        errors = list(validator.iter_errors(data))
        for error in errors:
            where = ".".join(str(part) for part in error.path) or "(top level)"
            problems.append(f"{path}: field '{where}': {error.message}")
        if not errors:
            found.append((path, data))
    return found


def load_credit_catalog(root: Path | str, catalog: Catalog) -> CreditCatalog:
    """Reads `<root>/credits/`; names are checked against `catalog`. Raises CatalogError listing every problem."""
    base, problems = Path(root) / "credits", []
    included, event_types = {}, {}
    for path, data in _entries(base / "plans", PLAN_SCHEMA, problems):
        if data["license_type"] not in catalog.license_types:
            problems.append(f"{path}: field 'license_type': unknown license type {data['license_type']!r}")
        included[data["license_type"]] = Decimal(data["included_credits_per_seat_month"])
    for path, data in _entries(base / "event_types", EVENT_TYPE_SCHEMA, problems):
        entitled = data["entitled_by"]
        primitive, add_on = entitled.get("unit_primitive"), entitled.get("add_on")
        if primitive and primitive not in catalog.unit_primitives:
            problems.append(f"{path}: field 'entitled_by.unit_primitive': unknown unit primitive {primitive!r}")
        if add_on and add_on not in catalog.add_ons:
            problems.append(f"{path}: field 'entitled_by.add_on': unknown add-on {add_on!r}")
        units = [price["unit_of_measure"] for price in data.get("prices", [])]
        if len(units) != len(set(units)):
            problems.append(f"{path}: field 'prices': a unit_of_measure is priced twice")
        if data["event_type"] in event_types:
            problems.append(f"{path}: field 'event_type': {data['event_type']!r} is priced in another file too")
        try:
            prices = {price["unit_of_measure"]: Decimal(price["credits_per_unit"]) for price in data.get("prices", [])}
        except InvalidOperation:  # the schema's pattern already refuses it; kept for a clear message
            problems.append(f"{path}: field 'prices': not a decimal amount")
            continue
        event_types[data["event_type"]] = EventType(data["event_type"], data["description"], primitive, add_on, prices)
    if problems:
        raise CatalogError(problems)
    return CreditCatalog(included_per_seat_month=included, event_types=event_types)


def get_credit_catalog() -> CreditCatalog:
    """The credits of the process's catalog (read again whenever the catalog itself is: `reset_catalog_cache`)."""
    return _credit_catalog_of(get_catalog(), str(settings.CATALOG_PATH))


@functools.lru_cache(maxsize=4)
def _credit_catalog_of(catalog: Catalog, root: str) -> CreditCatalog:
    return load_credit_catalog(root, catalog)
