"""License-key authentication and per-instance throttling for the instance-facing REST API."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, throttling

from issuer.conf import issuer_settings
from issuer.sync_state.store import sync_state_by_license_key


class InstanceUser:
    """The request's user when an instance authenticates: not a Django user, never staff."""

    is_authenticated = True
    is_staff = False
    is_superuser = False
    is_active = True

    def __init__(self, instance):
        self.instance = instance
        self.pk = f"instance:{instance.pk}"


def bearer_license_key(request) -> str | None:
    """The license key of `Authorization: Bearer <key>`, or None when the header is missing or malformed."""
    try:
        header = authentication.get_authorization_header(request).split()
    except UnicodeError:  # not latin-1: no license key of ours
        return None
    if len(header) != 2 or header[0].lower() != LicenseKeyAuthentication.keyword.lower().encode():
        return None
    try:
        return header[1].decode()
    except UnicodeDecodeError:
        return None


class LicenseKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <license key>`; the same 401 for a missing, unknown or wrong key.

    `request.auth` is the instance's `SyncState` (what the token endpoint needs, cached like the GraphQL sync)."""

    keyword = "Bearer"
    failure = "Invalid or missing license key."

    def authenticate(self, request):
        license_key = bearer_license_key(request)
        if license_key is None:
            raise exceptions.AuthenticationFailed(self.failure)
        state = sync_state_by_license_key(license_key)
        if state is None:
            raise exceptions.AuthenticationFailed(self.failure)
        return InstanceUser(state.instance), state

    def authenticate_header(self, request):
        return f'{self.keyword} realm="license key"'


class LicenseKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = LicenseKeyAuthentication
    name = "licenseKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "The license key from activation."}


class InstanceThrottle(throttling.SimpleRateThrottle):
    """Per instance, in the shared cache, so every web replica counts together."""

    scope = "instance"

    def get_rate(self):
        return f"{issuer_settings.SYNC_THROTTLE_PER_MINUTE}/min"

    def get_cache_key(self, request, view):
        if request.auth is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.instance.pk}
