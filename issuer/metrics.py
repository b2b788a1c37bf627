"""The issuer's own Prometheus metrics, exported at /metrics with django-prometheus's."""

from django.utils import timezone
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY

tokens_issued = Counter("issuer_tokens_issued_total", "ServiceAccessTokens minted", ["reason"])
syncs = Counter("issuer_token_syncs_total", "Token syncs by result", ["result"])


def _families():
    """Keys by state, age of the active key, last success of each periodic job, and refresh lag (seconds since the
    refresh job last dispatched: alert when it exceeds a few schedule periods)."""
    return (
        GaugeMetricFamily("issuer_signing_keys", "Signing keys by state", labels=["state"]),
        GaugeMetricFamily("issuer_active_signing_key_age_seconds", "Age of the active signing key"),
        GaugeMetricFamily(
            "issuer_job_last_success_timestamp_seconds", "Last successful run of a periodic job", labels=["job"]
        ),
        GaugeMetricFamily("issuer_token_refresh_lag_seconds", "Seconds since the token refresh job last ran"),
    )


class SigningKeyCollector:
    """Read at scrape time from the database, so every web replica reports the same truth."""

    def describe(self):
        """Names only: without this, registering would query the database at import time."""
        return _families()

    def collect(self):
        from issuer.models import JobLock, SigningKey

        by_state, active_age, last_run, refresh_lag = _families()
        counts = dict.fromkeys(SigningKey.State.values, 0)
        try:
            for key in SigningKey.objects.values("state", "activated_at"):
                counts[key["state"]] += 1
                if key["state"] == SigningKey.State.ACTIVE and key["activated_at"]:
                    active_age.add_metric([], (timezone.now() - key["activated_at"]).total_seconds())
            for lock in JobLock.objects.exclude(last_success_at=None):
                last_run.add_metric([lock.name], lock.last_success_at.timestamp())
                if lock.name == "token_refresh":
                    refresh_lag.add_metric([], (timezone.now() - lock.last_success_at).total_seconds())
        except Exception:  # a scrape must never fail the endpoint (e.g. before migrations)
            return
        for state, count in counts.items():
            by_state.add_metric([state], count)
        yield by_state
        yield active_age
        yield last_run
        yield refresh_lag


REGISTRY.register(SigningKeyCollector())
