"""The timing rules of the key lifecycle, in one place: when a key may sign, when the next one is due, when a
retired key may leave the JWKS. Pure functions of a key's times and the settings; services, the policy job, the
timeline and every door ask these."""

import datetime as dt

from issuer.conf import issuer_settings
from issuer.models import SigningKey

State = SigningKey.State


def _humanize(delta: dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def signing_key_published_long_enough_at(key: SigningKey) -> dt.datetime:
    """Validators cache the JWKS: a pending key may sign only once it has been published for the lead."""
    return key.created_at + issuer_settings.publish_lead


def signing_key_successor_due_at(active: SigningKey) -> dt.datetime:
    """When the policy creates the active key's successor, so it is published a full lead before it must sign."""
    return active.activated_at + issuer_settings.rotation_period - issuer_settings.publish_lead


def signing_key_activation_due_at(pending: SigningKey, active: SigningKey | None) -> dt.datetime:
    """When the policy activates `pending`: its lead has passed and the active key has signed for its period."""
    due = signing_key_published_long_enough_at(pending)
    if active is not None and active.activated_at is not None:
        due = max(due, active.activated_at + issuer_settings.rotation_period)
    return due


def signing_key_purge_due_at(retired: SigningKey) -> dt.datetime:
    """Every token a retired key signed has expired in every validator's cache (token TTL + cache + skew)."""
    return retired.retired_at + issuer_settings.retire_overlap


def signing_key_too_early(key: SigningKey, action: str, at: dt.datetime, *, signing: bool = True) -> str | None:
    """Why activating or purging `key` at `at` is not yet safe (None when it is): the one rule behind `force`.
    `signing`: whether another key signs now. When none does (a first start, or the active key revoked), nothing
    can be minted until a key is activated, so waiting for the lead would only prolong the outage."""
    if action == "activate" and key.state == State.PENDING and signing:
        safe_at = signing_key_published_long_enough_at(key)
        why = (
            f"Key {key.kid} has been published for {_humanize(at - key.created_at)}; validators cache the JWKS, so it "
            f"may only sign after {_humanize(issuer_settings.publish_lead)}"
        )
    elif action == "purge" and key.state == State.RETIRED:
        safe_at = signing_key_purge_due_at(key)
        why = (
            f"Key {key.kid} retired at {key.retired_at:%Y-%m-%d %H:%M} UTC; tokens it signed may be verified until then"
        )
    else:
        return None
    if at >= safe_at:
        return None
    return f"{why} (at {safe_at:%Y-%m-%d %H:%M} UTC, {_humanize(safe_at - at)} from now)."
