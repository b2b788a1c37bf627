"""The issuer's one settings object: every knob with its default, overridable through `settings.ISSUER`."""

import datetime as dt
from dataclasses import dataclass, fields

from django.conf import settings
from django.core.signals import setting_changed

from config.environment import KNOB_DEFAULTS


@dataclass(frozen=True)
class IssuerSettings:
    TOKEN_TTL_SECONDS: int
    NBF_BACKDATE_SECONDS: int
    PUBLISH_LEAD_SECONDS: int  # a new key is in the JWKS this long before it signs
    VALIDATOR_CACHE_SECONDS: int  # how long validators keep our JWKS (the AI gateway: 24 h)
    CLOCK_SKEW_SECONDS: int
    ROTATION_PERIOD_SECONDS: int  # how long a key signs
    REFRESH_THRESHOLD_SECONDS: int  # a stored token with less life left than this is re-minted
    JWKS_MAX_AGE_SECONDS: int
    RSA_KEY_SIZE: int
    SYNC_THROTTLE_PER_MINUTE: int
    REFRESH_CHUNK_SIZE: int  # 1,000: 3–6% faster a token than 500 (fewer round trips a token), no gain at 2,000
    SYNC_STATE_CACHE_SECONDS: int  # how long a sync's inputs stay in the shared cache (0: never cached)
    TOKEN_RECORD_RETENTION_DAYS: int  # token records older than this are dropped (a month at a time on PostgreSQL)
    VALIDATOR_FORGET_DAYS: int  # a validator not seen for this long no longer holds back a rotation

    @property
    def token_ttl(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.TOKEN_TTL_SECONDS)

    @property
    def publish_lead(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.PUBLISH_LEAD_SECONDS)

    @property
    def rotation_period(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.ROTATION_PERIOD_SECONDS)

    @property
    def retire_overlap(self) -> dt.timedelta:
        """A retired key stays published until every token it signed has expired in every validator's cache."""
        return dt.timedelta(seconds=self.TOKEN_TTL_SECONDS + self.VALIDATOR_CACHE_SECONDS + self.CLOCK_SKEW_SECONDS)

    @property
    def refresh_threshold(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.REFRESH_THRESHOLD_SECONDS)


def issuer_settings_load() -> IssuerSettings:
    """A fresh read of the settings; raises ValueError on an unknown name (the start-up check reports it)."""
    values = {**KNOB_DEFAULTS, **getattr(settings, "ISSUER", {})}
    unknown = set(values) - {f.name for f in fields(IssuerSettings)}
    if unknown:
        raise ValueError(f"Unknown ISSUER settings: {', '.join(sorted(unknown))}")
    return IssuerSettings(**values)


class _Lazy:
    _value: IssuerSettings | None = None

    def __getattr__(self, name):
        if self._value is None:
            self._value = issuer_settings_load()
        return getattr(self._value, name)

    def reload(self):
        self._value = None


issuer_settings = _Lazy()


def _reload(*, setting, **kwargs):
    if setting == "ISSUER":
        issuer_settings.reload()


setting_changed.connect(_reload)
