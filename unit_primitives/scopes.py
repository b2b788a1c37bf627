"""The one function that turns entitlements into scopes (PROTOCOL §5). Everything else asks it."""

import bisect
import datetime as dt
import functools
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


def _grant(catalog: Catalog, license_type, add_ons: frozenset[str], version, at: dt.datetime) -> Grant:
    scopes, audiences = [], set()
    for primitive in catalog.unit_primitives.values():
        services = [catalog.backend_services.get(name) for name in primitive.backend_services]
        if any(service is None for service in services):
            continue
        if not _is_granted(primitive, license_type, add_ons, version, at):
            continue
        scopes.append(primitive.name)
        audiences.update(service.jwt_aud for service in services)
    return Grant(scopes=tuple(sorted(scopes)), audiences=tuple(sorted(audiences)))


@functools.cache
def _cut_offs(catalog: Catalog) -> tuple[dt.datetime, ...]:
    return tuple(sorted({p.cut_off_date for p in catalog.unit_primitives.values() if p.cut_off_date}))


@functools.lru_cache(maxsize=4096)
def _grant_between_cut_offs(catalog: Catalog, license_type, add_ons: frozenset[str], version, passed: int) -> Grant:
    """The grant is the same for every moment between two consecutive cut-off dates: decide at the first."""
    cut_offs = _cut_offs(catalog)
    moment = cut_offs[passed - 1] if passed else dt.datetime.min.replace(tzinfo=dt.UTC)
    return _grant(catalog, license_type, add_ons, version, moment)


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
    unparseable (unknown), in which case no version-gated primitive is granted. Results are memoized per
    catalog, inputs and the number of cut-off dates already passed (the only way `at` matters).
    """
    if at.tzinfo is None:
        raise ValueError("`at` must be timezone-aware")
    catalog = catalog or get_catalog()
    passed = bisect.bisect_right(_cut_offs(catalog), at)
    return _grant_between_cut_offs(
        catalog, license_type, frozenset(active_add_ons), parse_version(gitlab_version), passed
    )
