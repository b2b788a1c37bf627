"""The one function that turns entitlements into scopes (PROTOCOL §5). Everything else asks it."""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from unit_primitives.catalog import Catalog, UnitPrimitive, get_catalog
from unit_primitives.versions import parse_version, version_at_least


@dataclass(frozen=True)
class Grant:
    scopes: tuple[str, ...]  # sorted unit primitive names
    audiences: tuple[str, ...]  # sorted jwt_aud of the backend services behind those scopes


def _is_granted(
    primitive: UnitPrimitive,
    license_type: str | None,
    active_add_ons: frozenset[str],
    version: tuple[int, int, int] | None,
    at: dt.datetime,
) -> bool:
    free_access = primitive.cut_off_date is None or at < primitive.cut_off_date
    if free_access:
        return version_at_least(version, primitive.min_version_for_free_access)
    return (
        license_type in primitive.license_types
        and not active_add_ons.isdisjoint(primitive.add_ons)
        and version_at_least(version, primitive.min_version)
    )


def granted_scopes(
    *,
    license_type: str | None,
    active_add_ons: Iterable[str],
    gitlab_version: str | None,
    at: dt.datetime,
    catalog: Catalog | None = None,
) -> Grant:
    """Unit primitives an instance may use at `at`, and the audiences of their backend services.

    `active_add_ons` are the add-on names with a purchase active at `at`; `gitlab_version` may be None or
    unparseable (unknown), in which case no version-gated primitive is granted.
    """
    if at.tzinfo is None:
        raise ValueError("`at` must be timezone-aware")
    catalog = catalog or get_catalog()
    add_ons = frozenset(active_add_ons)
    version = parse_version(gitlab_version)
    scopes, audiences = [], set()
    for primitive in catalog.unit_primitives.values():
        services = [catalog.backend_services.get(name) for name in primitive.backend_services]
        if None in services or not _is_granted(primitive, license_type, add_ons, version, at):
            continue
        scopes.append(primitive.name)
        audiences.update(service.jwt_aud for service in services)
    return Grant(scopes=tuple(sorted(scopes)), audiences=tuple(sorted(audiences)))
