"""Read models of the back office: what the dashboard, the instance page and the catalog page show, computed
here so the pages only render."""

import datetime as dt
import uuid
from dataclasses import dataclass

import jwt

from audit.models import AuditEvent
from audit.selectors import audit_events_filtered
from issuer.backoffice import charts
from issuer.fleet.selectors import (
    LIVE_COUNT_MAX_INSTANCES,
    credits_nearly_out,
    fleet_daily_series,
    fleet_hourly_series,
    fleet_seats_latest,
    fleet_small_enough_to_count_live,
    fleet_snapshot,
    fleet_summary,
    fleet_syncs_per_hour_live,
    fleet_tokens_per_day_live,
    fleet_versions_latest,
    fleet_versions_live,
    seat_utilisation,
    stale_instances,
)
from issuer.keys import encryption
from issuer.keys.selectors import signing_key_timeline, validator_rows, validators_blocking
from issuer.models import SigningKey, Validator
from issuer.tokens.selectors import TokenInvalid, verify_service_access_token
from subscriptions.models import Instance
from subscriptions.selectors import (
    STALE_AFTER,
    add_on_purchases_expiring,
    add_on_purchases_lapsed,
    instance_entitlements,
    instance_ids_seen,
    seat_reports_latest_with_overage,
    subscriptions_expiring,
)
from unit_primitives.catalog import get_catalog

AI_GATEWAY_AUDIENCE = "gitlab-ai-gateway"


@dataclass(frozen=True)
class DiagnosisCheck:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class InstanceDiagnosis:
    """GitLab's Duo health check seen from the issuer's side: what would make this instance's Duo fail."""

    checks: list[DiagnosisCheck]
    newest_token_expires_at: dt.datetime | None
    instance_ids_seen: list[dict]
    last_error: str
    last_error_at: dt.datetime | None

    @property
    def healthy(self) -> bool:
        return all(check.ok for check in self.checks)


def instance_diagnosis(instance: Instance, now: dt.datetime) -> InstanceDiagnosis:
    """Access data freshness, the newest token against the AI gateway's rules (PROTOCOL §7), clones, last error."""
    checks = [_freshness_check(instance, now)]
    newest = instance.issued_tokens.order_by("-issued_at").first()
    checks.extend(_gateway_checks(instance, newest, now))
    seen = instance_ids_seen(instance, now)
    foreign = [row["instance_id"] for row in seen if not row["own"]]
    checks.append(
        DiagnosisCheck(
            "one instance id per license key",
            not foreign,
            f"also used from {', '.join(foreign)}: newer AI gateways refuse those callers" if foreign else "yes",
        )
    )
    return InstanceDiagnosis(
        checks=checks,
        newest_token_expires_at=newest.expires_at if newest else None,
        instance_ids_seen=seen,
        last_error=instance.last_error,
        last_error_at=instance.last_error_at,
    )


def _freshness_check(instance, now: dt.datetime) -> DiagnosisCheck:
    if instance.last_sync_at is None:
        return DiagnosisCheck("access data fresh (synced within 3 days)", False, "never synced")
    age = now - instance.last_sync_at
    return DiagnosisCheck(
        "access data fresh (synced within 3 days)",
        age <= STALE_AFTER,
        f"last sync {age.days} days ago: GitLab considers its access data stale" if age > STALE_AFTER else "yes",
    )


def _gateway_checks(instance, newest, now: dt.datetime) -> list[DiagnosisCheck]:
    """The newest token as the AI gateway would judge it, when we still hold its text; else from its record."""
    if newest is None:
        return [DiagnosisCheck("a token has been issued", False, "no token yet")]
    if newest.token_encrypted is None:
        return [DiagnosisCheck("newest token still valid", False, f"expired at {newest.expires_at:%Y-%m-%d %H:%M} UTC")]
    token = encryption.decrypt(bytes(newest.token_encrypted)).decode()
    try:
        claims = verify_service_access_token(token, audience=AI_GATEWAY_AUDIENCE, leeway=0)
    except TokenInvalid as error:
        return [DiagnosisCheck("newest token passes the AI gateway", False, str(error))]
    identifier = str(instance.instance_identifier)
    claimed = instance.last_seen_instance_id or identifier
    return [
        DiagnosisCheck("newest token passes the AI gateway", True, f"signed by a published key, aud {claims['aud']}"),
        DiagnosisCheck(
            "gitlab_realm is self-managed",
            claims.get("gitlab_realm") == "self-managed",
            claims.get("gitlab_realm", "missing"),
        ),
        DiagnosisCheck(
            "sub and gitlab_instance_uid match X-Gitlab-Instance-Id",
            claims.get("sub") == claims.get("gitlab_instance_uid") == claimed,
            f"sub {claims.get('sub')}, instance id sent {claimed}",
        ),
    ]


def dashboard_charts(now: dt.datetime, snapshot: dict) -> list[charts.Chart]:
    """The fleet's charts from the rollups; before the first rollup, counted now for a fleet small enough
    (LIVE_COUNT_MAX_INSTANCES), else empty with a note saying the job will fill them."""
    if not snapshot and fleet_small_enough_to_count_live():
        note = "Counted now: the rollup job has not run yet."
        return [
            charts.tokens_per_day_chart(fleet_tokens_per_day_live(now, days=30), note),
            charts.syncs_per_hour_chart(fleet_syncs_per_hour_live(now, hours=48), note),
            charts.versions_chart(fleet_versions_live(now), note),
            charts.seats_chart(seat_utilisation(), note),
            charts.stale_chart([(now.date(), stale_instances(now).count())], note + " Earlier days need the job."),
        ]
    note = (
        ""
        if snapshot
        else f"Waiting for the first rollup (every 5 minutes): with more than {LIVE_COUNT_MAX_INSTANCES} instances the "
        "dashboard does not count on every view."
    )
    return [
        charts.tokens_per_day_chart(fleet_daily_series("tokens_issued", now, days=30), note),
        charts.syncs_per_hour_chart(fleet_hourly_series("instances_synced", now, hours=48), note),
        charts.versions_chart(fleet_versions_latest(snapshot), note),
        charts.seats_chart(fleet_seats_latest(snapshot), note),
        charts.stale_chart(fleet_daily_series("stale_instances", now, days=30), note),
    ]


def dashboard(now: dt.datetime) -> dict:
    """Everything the dashboard shows, each list bounded, the counts and charts from the rollups."""
    timeline, snapshot = signing_key_timeline(), fleet_snapshot()
    return {
        "summary": fleet_summary(now, snapshot),
        "tokens_since": now - dt.timedelta(hours=24),  # the tokens card's list: issued since then
        "validators_blocking": validators_blocking(now),
        "no_confirmed_validator": not Validator.objects.filter(confirmed=True).exists(),
        "credits_nearly_out": credits_nearly_out(),
        "charts": dashboard_charts(now, snapshot),
        "timeline_chart": charts.key_timeline_chart(timeline, validator_rows(now), now),
        "timeline": timeline,
        "expiring_subscriptions": subscriptions_expiring(30, now.date())[:20],
        "expiring_add_ons": add_on_purchases_expiring(30, now.date())[:20],
        "overage_reports": seat_reports_latest_with_overage()[:20],
        "latest_instances": Instance.objects.select_related("subscription__customer", "last_sync").order_by(
            "-activated_at"
        )[:5],
        # running subscriptions whose add-ons lapsed (a renewal that left them behind)
        "lapsed_add_ons": add_on_purchases_lapsed(now.date())[:20],
    }


def instance_overview(instance: Instance, now: dt.datetime) -> dict:
    """The instance page: entitlements now against the newest token, token history, seat reports, diagnosis."""
    entitlements = instance_entitlements(instance, now)
    tokens = list(instance.issued_tokens.order_by("-issued_at")[:20])
    newest_scopes = set(tokens[0].scopes) if tokens else set()
    granted = set(entitlements.grant.scopes)
    reports = list(instance.seat_reports.order_by("-reported_at")[:30])[::-1]
    return {
        "entitlements": entitlements,
        "diagnosis": instance_diagnosis(instance, now),
        **_scope_comparison(granted, newest_scopes if tokens else None),
        "tokens": tokens,
        "reports": reports[::-1],
        "chart": charts.seat_reports_chart(reports),
    }


def _scope_comparison(granted: set[str], in_token: set[str] | None) -> dict:
    """Scopes granted now against the newest token's: only the differences as rows, and every scope as a chip
    grouped by the backend service that serves it."""
    services = {name: primitive.backend_services for name, primitive in get_catalog().unit_primitives.items()}
    groups: dict[str, list[dict]] = {}
    rows = []
    for name in sorted(granted | (in_token or set())):
        row = {
            "name": name,
            "granted": name in granted,
            "in_token": None if in_token is None else name in in_token,
        }
        row["match"] = row["in_token"] is None or row["granted"] == row["in_token"]
        rows.append(row)
        for service in services.get(name) or ("(not in the catalog)",):
            groups.setdefault(service, []).append(row)
    return {
        "scope_count": len(rows),
        "scope_differences": [row for row in rows if not row["match"]],
        "scope_groups": sorted(groups.items()),
        "has_token": in_token is not None,
    }


def catalog_overview(now: dt.datetime) -> dict:
    """The catalog page: every unit primitive (free now or paid), what each add-on and backend service grants."""
    catalog = get_catalog()
    primitives = catalog.unit_primitives.values()
    by_add_on = {name: [] for name in catalog.add_ons}
    for primitive in primitives:
        for add_on in primitive.add_ons:
            by_add_on[add_on].append(primitive.name)
    return {
        "rows": [
            {"primitive": primitive, "free": primitive.cut_off_date is None or now < primitive.cut_off_date}
            for primitive in primitives
        ],
        "by_add_on": by_add_on,
        "by_service": {
            service: sorted(p.name for p in primitives if service in p.backend_services)
            for service in catalog.backend_services
        },
        "backend_services": catalog.backend_services,
        "digest": catalog.digest,
    }


TOKEN_TIME_CLAIMS = ("iat", "nbf", "exp")


def duration_words(delta: dt.timedelta) -> str:
    """`in 2 d 23 h`, `5 h 10 min ago`, `in 12 min`: days and hours, or hours and minutes, or minutes."""
    seconds = abs(int(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        words = f"{days} d {hours} h"
    elif hours:
        words = f"{hours} h {minutes} min"
    else:
        words = f"{minutes} min"
    return f"in {words}" if delta.total_seconds() >= 0 else f"{words} ago"


@dataclass(frozen=True)
class TokenInspection:
    """What the inspect page shows of a pasted token: its JOSE header, its claims (verified, or else as they read,
    marked unverified), the time claims in UTC and relative to now, the instance its `sub` names, and the key its
    `kid` names, with who revoked it, when and why."""

    header: dict | None
    claims: dict | None
    verified: bool
    error: str
    times: dict[str, tuple[dt.datetime, str]]
    instance: Instance | None
    key: SigningKey | None  # the key the header names, when this issuer knows it
    revocation: AuditEvent | None  # its `signingkey.revoke` event

    @property
    def claim_rows(self) -> list[tuple[str, object, tuple[dt.datetime, str] | None]]:
        """(name, value, (moment, "in 2 d 23 h") for a time claim)."""
        return [(name, value, self.times.get(name)) for name, value in (self.claims or {}).items()]


def token_inspect(token: str, audience: str | None, now: dt.datetime) -> TokenInspection:
    error, verified = "", True
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as invalid:
        return TokenInspection(None, None, False, f"Not a JWT: {invalid}", {}, None, None, None)
    try:
        claims = verify_service_access_token(token, audience=audience)
    except TokenInvalid as invalid:
        error, verified = str(invalid), False
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            claims = None
    times = {}
    for name in TOKEN_TIME_CLAIMS:
        value = (claims or {}).get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            moment = dt.datetime.fromtimestamp(value, dt.UTC)
            times[name] = (moment, duration_words(moment - now))
    sub = (claims or {}).get("sub")
    instance = Instance.objects.filter(instance_identifier=sub).first() if _is_uuid(sub) else None
    key = SigningKey.objects.filter(kid=str(header.get("kid", ""))[:64]).first()
    revocation = None
    if key is not None and key.state == SigningKey.State.REVOKED:
        revocation = audit_events_filtered(
            action="signingkey.revoke", object_type="signingkey", object_id=str(key.pk)
        ).first()
    return TokenInspection(header, claims, verified, error, times, instance, key, revocation)


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
