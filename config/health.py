"""Liveness and readiness, as JSON, for load balancers and compose health checks. /readyz's status is public; which
check failed and why only for the operator's monitoring (config/metrics_access.py: the allowed networks or the
metrics token)."""

from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY

from config.metrics_access import metrics_allowed

_readiness_probes = []


def readiness_probe(func):
    """Registers `func() -> (name, ok, detail)`; apps add their own (the issuer adds 'signing key')."""
    _readiness_probes.append(func)
    return func


@readiness_probe
def _database():
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "database", True, "ok"
    except Exception as error:  # any driver error means not ready
        return "database", False, type(error).__name__


@readiness_probe
def _cache():
    try:
        cache.set("readyz:probe", "1", 5)
        ok = cache.get("readyz:probe") == "1"
        return "cache", ok, "ok" if ok else "value not read back"
    except Exception as error:
        return "cache", False, type(error).__name__


@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request):
    checks = {}
    for probe in _readiness_probes:
        name, ok, detail = probe()
        checks[name] = {"ok": ok, "detail": detail}
    ready = all(check["ok"] for check in checks.values())
    body = {"status": "ok" if ready else "unavailable"}
    if metrics_allowed(request):
        body["checks"] = checks
    return JsonResponse(body, status=200 if ready else 503)


class ReadinessCollector:
    """/metrics: each readiness check as 1 (ok) or 0, so an alert sees the database or Redis unreachable."""

    def describe(self):
        return [GaugeMetricFamily("issuer_ready", "Readiness checks (1 ok, 0 failing)", labels=["check"])]

    def collect(self):
        family = GaugeMetricFamily("issuer_ready", "Readiness checks (1 ok, 0 failing)", labels=["check"])
        for probe in _readiness_probes:
            name, ok, _ = probe()
            family.add_metric([name], 1 if ok else 0)
        yield family


REGISTRY.register(ReadinessCollector())
