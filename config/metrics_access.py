"""`/metrics` is for the operator's Prometheus, not the internet: served to addresses in
ISSUER_METRICS_ALLOWED_NETWORKS (default: loopback) or to a bearer of ISSUER_METRICS_TOKEN, 403 otherwise. The
address is the client's as the rate limits see it (behind the TLS proxy, the one the proxy appended), so a scrape
through the public proxy is judged by the caller's address, never the proxy's."""

import hmac
import ipaddress
from functools import cache

from django.conf import settings
from django.http import HttpResponseForbidden
from django_prometheus.exports import ExportToDjangoView

from config.limits import client_ip


@cache
def _networks(spec: tuple[str, ...]):
    return tuple(ipaddress.ip_network(network, strict=False) for network in spec)


def _bearer_ok(request) -> bool:
    expected = settings.ISSUER_METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    return bool(expected) and hmac.compare_digest(header.encode(), f"Bearer {expected}".encode())


def client_in_networks(request, networks) -> bool:
    """Whether the caller's address (as the rate limits see it) is in one of `networks` (CIDR strings)."""
    try:
        address = ipaddress.ip_address(client_ip(request))
    except ValueError:
        return False
    return any(address in network for network in _networks(tuple(networks)))


def _address_ok(request) -> bool:
    return client_in_networks(request, settings.ISSUER_METRICS_ALLOWED_NETWORKS)


def metrics_allowed(request) -> bool:
    """The operator's monitoring: an allowed network or the metrics token (also what may read /readyz's details)."""
    return _bearer_ok(request) or _address_ok(request)


def metrics(request):
    if not metrics_allowed(request):
        return HttpResponseForbidden("metrics are served to the allowed networks or with the metrics token\n")
    return ExportToDjangoView(request)
