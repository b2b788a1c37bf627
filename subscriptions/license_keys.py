"""License keys: a random secret shown once; stored only as a peppered HMAC-SHA256 digest."""

import hashlib
import hmac
import secrets

from django.conf import settings

PREFIX = "cdl_"
# Ours are 47 characters; anything much longer is not worth hashing (and bounds the work a caller can cause).
LICENSE_KEY_MAX_LENGTH = 256


def license_key_new() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def license_key_plausible(license_key: str | None) -> bool:
    """Whether `license_key` is worth looking up at all: present and not absurdly long."""
    return bool(license_key) and len(license_key) <= LICENSE_KEY_MAX_LENGTH


def license_key_digest(license_key: str) -> str:
    return hmac.new(settings.LICENSE_KEY_PEPPER.encode(), license_key.encode(), hashlib.sha256).hexdigest()


def license_key_display_prefix(license_key: str) -> str:
    """Not a secret: enough for support to tell two keys apart."""
    return license_key[: len(PREFIX) + 6]
