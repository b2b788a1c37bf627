"""Limits of the instance-facing doors (GraphQL, REST token endpoint, seat links): the declared body size, and
rate limits counted in the shared cache with django-ratelimit so every web replica counts together. Checked
before any credential is looked up:

- per client address, every request (`INSTANCE_RATE_PER_ADDRESS`);
- per client address, activation attempts, tightly (`ACTIVATION_RATE_PER_ADDRESS`: activation codes are the
  only thing an unknown caller can guess at);
- per license key, syncs and seat links (`INSTANCE_RATE_PER_LICENSE_KEY`; counted on a digest, never the key);
- per license key, GitLab's usage read-backs (`subscription { gitlabCreditsUsage }`), on a counter of their own at
  READBACK_RATE_FACTOR times that rate: one view of GitLab's credits page sends a dozen documents.

The client address is REMOTE_ADDR; behind the TLS proxy (an https ISSUER_URL) it is the address the proxies in
front (TRUSTED_PROXY_HOPS of them) appended to X-Forwarded-For, the only entry a client cannot forge. The web
port must then be reachable only through those proxies. With Redis down the limits fail open
(RATELIMIT_FAIL_OPEN): an outage of the counter must not cut every instance off.
"""

import hashlib
import ipaddress
import time
from dataclasses import dataclass

import orjson
from django.conf import settings
from django.core.cache import cache
from django_ratelimit import ALL
from django_ratelimit import core as ratelimit_core
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


def json_text_may_nest(text: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON text can nest deeper than `limit`: never with no more opening brackets than that (counted in
    strings too, which only overestimates). A sync's body has six, so its decoded value is not walked."""
    return text.count(b"{") + text.count(b"[") > limit


def json_text_may_hold_nul(text: bytes) -> bool:
    """Whether JSON text can decode to a string holding NUL: only through the escape \\u0000 (orjson refuses a raw
    control character in a string), so a text without it needs no walk for one."""
    return b"\\u0000" in text


def json_has_nul(value) -> bool:
    """No database stores a NUL character in text: input holding one is refused before anything is written."""
    return any(isinstance(item, str) and "\x00" in item for item, _ in _json_walk(value))


def declared_body_length(request) -> int:
    """The Content-Length the caller declared (0 when absent or garbled): checked before the body is read."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def client_ip(request) -> str:
    """The caller's address. Behind the TLS proxies (an https ISSUER_URL), the entry that the outermost of
    TRUSTED_PROXY_HOPS proxies appended to X-Forwarded-For; entries further left are the caller's own words and never
    trusted. TRUSTED_PROXY_HOPS=0 means no proxy: the header is not read. A port is dropped; anything that is not an
    address falls back to the peer's. django-axes counts failed logins by this address too (AXES_CLIENT_IP_CALLABLE),
    so a forged header locks out no one else."""
    peer = request.META.get("REMOTE_ADDR", "")
    trusted = settings.TRUSTED_PROXY_HOPS
    # 0 (or less): no proxy of ours appends to the header, so it is not read at all (its every entry is the caller's).
    if trusted > 0 and settings.ISSUER_URL.startswith("https://"):
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if len(hops) >= trusted:
            return _address(hops[-trusted]) or peer
    return peer


def client_address(request) -> str:
    """The caller as a rate-limit bucket: its address, and an IPv6 caller by its /64 (one host's usual share)."""
    address = client_ip(request)
    parsed = _parse(address)
    if parsed is not None and parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return address[:64]


def _address(text: str) -> str | None:
    """`text` as an address without its port ("v4:port", "[v6]:port"), or None when it is none."""
    host = text
    if text.startswith("["):
        host = text[1 : text.find("]")] if "]" in text else text
    elif text.count(":") == 1:
        host = text.split(":", 1)[0]
    parsed = _parse(host)
    return str(parsed) if parsed is not None else None


def _parse(text: str):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class Refusal:
    """Why a request is turned away before any lookup; each door renders it in its own format."""

    status: int  # 400, 413 or 429
    message: str
    retry_after: int | None = None  # seconds, for a 429

    @property
    def headers(self) -> dict:
        return {"Retry-After": str(self.retry_after)} if self.retry_after else {}


JSON_MEDIA_TYPE = "application/json"


def json_content_type(request) -> bool:
    """Whether the body is declared JSON (parameters such as a charset allowed). A browser sends text/plain, form or
    multipart bodies to another site without asking first (no CORS preflight), never application/json: requiring it
    keeps web pages from spending a network's quota (activation attempts, syncs) through its users' browsers. GitLab
    always sends it."""
    return request.content_type.strip().lower() == JSON_MEDIA_TYPE


def json_body_admitted(request, max_bytes: int, *, count_address: bool = True):
    """(payload, None), or (None, Refusal): the checks every instance-facing JSON door makes first, cheapest first
    (the per-address rate limit, the declared size, valid JSON, the nesting depth). `count_address=False`: the
    caller counts the address itself (GraphQL, in the round trip of its other reads: `address_rate_count`)."""
    limited = rate_limit_address(request) if count_address else None
    if limited is not None:
        return None, limited
    if declared_body_length(request) > max_bytes:
        return None, Refusal(413, f"The request body is larger than {max_bytes} bytes.")
    if request.body and not json_content_type(request):  # an empty body spends nothing: its 400 says what is missing
        return None, Refusal(415, f"The request body must be sent as {JSON_MEDIA_TYPE}.")
    text = request.body or b"null"
    try:
        payload = orjson.loads(text)
    except (orjson.JSONDecodeError, UnicodeDecodeError):
        return None, Refusal(400, "The request body is not valid JSON.")
    if json_text_may_nest(text) and json_too_deep(payload):
        return None, Refusal(400, f"The request body is nested deeper than {MAX_JSON_DEPTH} levels.")
    return payload, None


# kind: (counter group, the setting with its rate, what the message calls it)
_RATE_LIMITS = {
    "address": ("instance-door", "INSTANCE_RATE_PER_ADDRESS", "requests per client address"),
    "activation": ("activation", "ACTIVATION_RATE_PER_ADDRESS", "activation attempts per client address"),
    "license_key": ("license-key", "INSTANCE_RATE_PER_LICENSE_KEY", "requests per license key"),
    "license_key_readback": (
        "license-key-readback",
        "INSTANCE_RATE_PER_LICENSE_KEY",
        "usage read-backs per license key",
    ),
}
READBACK_RATE_FACTOR = 10


def _rate_limited(request, kind: str, value: str) -> Refusal | None:
    group, setting, label = _RATE_LIMITS[kind]
    rate = getattr(settings, setting)
    usage = get_usage(request, group=group, key=lambda _group, _request: value, rate=rate, increment=True)
    if usage is None or not usage["should_limit"]:
        return None
    return _too_many(label, rate, usage["time_left"])


def _too_many(label: str, rate: str, time_left: int) -> Refusal:
    retry_after = max(int(time_left), 1)
    return Refusal(429, f"Too many requests ({label}: {rate}); retry in {retry_after} s.", retry_after)


@dataclass(frozen=True)
class RateCount:
    """One request's count against one limit, keyed exactly as django-ratelimit keys it (same counter, same window),
    for a door that counts it in the same round trip as its other cache reads (`cache.count_and_get_many`), or alone
    (`count_alone`)."""

    key: str
    limit: int
    timeout: int  # the counter's lifetime: the period and django-ratelimit's fudge
    window: int  # when the window ends (epoch seconds)
    label: str
    rate: str

    def refusal(self, count: int | None) -> Refusal | None:
        """None within the limit; with the count unknown (Redis away), as django-ratelimit: through with
        RATELIMIT_FAIL_OPEN, refused without."""
        if count is None and getattr(settings, "RATELIMIT_FAIL_OPEN", False):
            return None
        if count is not None and count <= self.limit:
            return None
        return _too_many(self.label, self.rate, self.window - int(time.time()))

    def count_alone(self) -> int | None:
        """This count in a round trip of its own (django-ratelimit's `add` then `incr`, one round trip on Redis:
        config/cache.py); None with the cache away."""
        if cache.add(self.key, 1, self.timeout):
            return 1
        try:
            return cache.incr(self.key)
        except ValueError:  # expired in between, or Redis away: fail open
            return None


def license_key_rate_count(license_key: str, *, readback: bool = False) -> RateCount | None:
    """The per-license-key count of a request, as `rate_limit_license_key` counts it (a usage read-back on its own
    counter, at READBACK_RATE_FACTOR times the rate); None when limits are off."""
    kind = "license_key_readback" if readback else "license_key"
    return _rate_count(kind, _license_key_bucket(license_key), READBACK_RATE_FACTOR if readback else 1)


def address_rate_count(request) -> RateCount | None:
    """The per-address count of a request, as `rate_limit_address` counts it (the same counter); None when limits
    are off."""
    return _rate_count("address", client_address(request))


def _rate_count(kind: str, value: str, factor: int = 1) -> RateCount | None:
    if not getattr(settings, "RATELIMIT_ENABLE", True):
        return None
    group, setting, label = _RATE_LIMITS[kind]
    rate = getattr(settings, setting)
    limit, period = ratelimit_core._split_rate(rate)
    if factor != 1:
        limit *= factor
        rate = f"{limit}/{period}s"
    window = ratelimit_core._get_window(value, period)
    key = ratelimit_core._make_cache_key(group, window, rate, value, ALL)
    return RateCount(key, limit, period + ratelimit_core.EXPIRATION_FUDGE, window, label, rate)


def rate_limit_address(request) -> Refusal | None:
    return _rate_limited(request, "address", client_address(request))


def rate_limit_activation(request) -> Refusal | None:
    return _rate_limited(request, "activation", client_address(request))


def rate_limit_license_key(request, license_key: str) -> Refusal | None:
    return _rate_limited(request, "license_key", _license_key_bucket(license_key))


def _license_key_bucket(license_key: str) -> str:
    return hashlib.sha256(license_key.encode("utf-8", "surrogatepass")).hexdigest()
