"""Limits of the instance-facing doors (GraphQL, REST token endpoint, seat links): the declared body size, and
rate limits counted in the shared cache with django-ratelimit so every web replica counts together. Checked
before any credential is looked up:

- per client address, every request (`INSTANCE_RATE_PER_ADDRESS`);
- per client address, activation attempts, tightly (`ACTIVATION_RATE_PER_ADDRESS`: activation codes are the
  only thing an unknown caller can guess at);
- per license key, syncs and seat links (`INSTANCE_RATE_PER_LICENSE_KEY`; counted on a digest, never the key).

The client address is REMOTE_ADDR; behind the TLS proxy (an https ISSUER_URL) it is the address the proxy
appended last to X-Forwarded-For, the only entry a client cannot forge. With Redis down the limits fail open
(RATELIMIT_FAIL_OPEN): an outage of the counter must not cut every instance off.
"""

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django_ratelimit.core import get_usage


def declared_body_length(request) -> int:
    """The Content-Length the caller declared (0 when absent or garbled): checked before the body is read."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def client_address(request) -> str:
    if settings.ISSUER_URL.startswith("https://"):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        last_hop = forwarded.rsplit(",", 1)[-1].strip()
        if last_hop:
            return last_hop
    return request.META.get("REMOTE_ADDR", "")


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
