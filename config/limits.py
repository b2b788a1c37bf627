"""Limits of the instance-facing doors (GraphQL, REST token endpoint, seat links): the declared body size, and
rate limits counted in the shared cache with django-ratelimit so every web replica counts together. Checked
before any credential is looked up:

- per client address, every request (`INSTANCE_RATE_PER_ADDRESS`);
- per client address, activation attempts, tightly (`ACTIVATION_RATE_PER_ADDRESS`: activation codes are the
  only thing an unknown caller can guess at);
- per license key, syncs and seat links (`INSTANCE_RATE_PER_LICENSE_KEY`; counted on a digest, never the key).

The client address is REMOTE_ADDR; behind the TLS proxy (an https ISSUER_URL) it is the address the proxies in
front (TRUSTED_PROXY_HOPS of them) appended to X-Forwarded-For, the only entry a client cannot forge. The web
port must then be reachable only through those proxies. With Redis down the limits fail open
(RATELIMIT_FAIL_OPEN): an outage of the counter must not cut every instance off.
"""

import hashlib
import ipaddress
from dataclasses import dataclass

from django.conf import settings
from django_ratelimit.core import get_usage

# GitLab's bodies nest three levels deep; deeper JSON is refused before anything walks it recursively.
MAX_JSON_DEPTH = 32


def _json_walk(value):
    """Every (item, depth) of a decoded JSON value, without recursion (dict keys included, as depth-level items)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        yield item, depth
        if isinstance(item, dict):
            stack.extend((key, depth + 1) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


def json_too_deep(value, limit: int = MAX_JSON_DEPTH) -> bool:
    return any(depth > limit for item, depth in _json_walk(value) if isinstance(item, dict | list))


def json_has_nul(value) -> bool:
    """No database stores a NUL character in text: input holding one is refused before anything is written."""
    return any(isinstance(item, str) and "\x00" in item for item, _ in _json_walk(value))


def declared_body_length(request) -> int:
    """The Content-Length the caller declared (0 when absent or garbled): checked before the body is read."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def client_address(request) -> str:
    """Who is calling, as a rate-limit bucket. Behind the TLS proxies (an https ISSUER_URL), the entry that the
    outermost of TRUSTED_PROXY_HOPS proxies appended to X-Forwarded-For; entries further left are the caller's own
    words and never trusted. A port is dropped, and an IPv6 address stands for its /64 (one host's usual share)."""
    address = request.META.get("REMOTE_ADDR", "")
    if settings.ISSUER_URL.startswith("https://"):
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if len(hops) >= settings.TRUSTED_PROXY_HOPS:
            address = hops[-settings.TRUSTED_PROXY_HOPS]
    return _bucket(address)


def _bucket(address: str) -> str:
    host = address
    if address.startswith("["):  # [v6]:port
        host = address[1 : address.find("]")] if "]" in address else address
    elif address.count(":") == 1:  # v4:port
        host = address.split(":", 1)[0]
    try:
        parsed = ipaddress.ip_address(host)
    except ValueError:
        return address[:64]  # not an address: still a bucket of its own, of bounded size
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


@dataclass(frozen=True)
class RateLimited:
    limit: str  # which limit, for the message
    retry_after: int  # seconds

    @property
    def message(self) -> str:
        return f"Too many requests ({self.limit}); retry in {self.retry_after} s."


def _hit(request, *, group: str, value: str, rate: str, label: str) -> RateLimited | None:
    usage = get_usage(request, group=group, key=lambda _group, _request: value, rate=rate, increment=True)
    if usage is None or not usage["should_limit"]:
        return None
    return RateLimited(limit=f"{label}: {rate}", retry_after=max(int(usage["time_left"]), 1))


def rate_limit_address(request) -> RateLimited | None:
    return _hit(
        request,
        group="instance-door",
        value=client_address(request),
        rate=settings.INSTANCE_RATE_PER_ADDRESS,
        label="requests per client address",
    )


def rate_limit_activation(request) -> RateLimited | None:
    return _hit(
        request,
        group="activation",
        value=client_address(request),
        rate=settings.ACTIVATION_RATE_PER_ADDRESS,
        label="activation attempts per client address",
    )


def rate_limit_license_key(request, license_key: str) -> RateLimited | None:
    digest = hashlib.sha256(license_key.encode("utf-8", "surrogatepass")).hexdigest()
    return _hit(
        request,
        group="license-key",
        value=digest,
        rate=settings.INSTANCE_RATE_PER_LICENSE_KEY,
        label="requests per license key",
    )
