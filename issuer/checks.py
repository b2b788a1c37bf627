"""Start-up checks: keys that do not decrypt, zero or two active keys, and an incomplete PKCS#11 configuration
(checked without opening the token: checks also run in master processes, which must not)."""

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.db import DatabaseError, connection

from issuer.conf import issuer_settings_load
from issuer.keys import encryption
from issuer.keys.hsm import pin_file_problem
from issuer.models import SigningKey


@register(deploy=False)
def signing_keys_usable(app_configs=None, databases=None, **kwargs):
    if not databases:  # checks without database access (e.g. `makemigrations`) skip this
        return []
    try:
        if SigningKey._meta.db_table not in connection.introspection.table_names():
            return []  # not migrated yet (asked without a query that PostgreSQL would log as an ERROR)
        keys = list(
            SigningKey.objects.exclude(state=SigningKey.State.REVOKED).only(
                "kid", "state", "backend", "private_key_encrypted"
            )
        )
    except DatabaseError:  # the database cannot be asked now: /readyz says so
        return []
    problems = []
    for key in (key for key in keys if key.backend == SigningKey.Backend.LOCAL):
        try:
            encryption.decrypt(key.private_key_encrypted)
        except encryption.KeyEncryptionError as error:
            problems.append(
                Error(
                    f"Signing key {key.kid} ({key.state}) cannot be decrypted: {error}",
                    hint="KEY_ENCRYPTION_KEYS must include the key that encrypted it; add new keys in front and "
                    "run `manage.py signing_keys rewrap`.",
                    id="issuer.E001",
                )
            )
    problems += _pkcs11_configuration(any(key.backend == SigningKey.Backend.PKCS11 for key in keys))
    active = [key for key in keys if key.state == SigningKey.State.ACTIVE]
    if len(active) > 1:
        problems.append(Error(f"{len(active)} signing keys are active; exactly one may be.", id="issuer.E002"))
    elif not active:
        problems.append(
            Error(
                "No signing key is active: tokens cannot be issued.",
                hint="Run `manage.py signing_keys ensure` (a first start creates and activates one at once).",
                id="issuer.E003",
            )
        )
    return problems


def _pkcs11_configuration(keys_in_token: bool) -> list[Error]:
    """New keys made in the token, or keys already there, need its module, label and PIN (a PIN file readable by
    its owner alone)."""
    if not (keys_in_token or settings.ISSUER_SIGNING_KEY_BACKEND == SigningKey.Backend.PKCS11):
        return []
    why = "signing keys are kept in a PKCS#11 token" if keys_in_token else "ISSUER_SIGNING_KEY_BACKEND is pkcs11"
    missing = [name for name in ("ISSUER_PKCS11_MODULE", "ISSUER_PKCS11_TOKEN_LABEL") if not getattr(settings, name)]
    if not (settings.ISSUER_PKCS11_PIN_FILE or settings.ISSUER_PKCS11_PIN):
        missing.append("ISSUER_PKCS11_PIN_FILE (or ISSUER_PKCS11_PIN)")
    problems = [
        Error(f"{name} is not set, and {why}.", hint="See docs/keys.md (PKCS#11).", id="issuer.E007")
        for name in missing
    ]
    problem = settings.ISSUER_PKCS11_PIN_FILE and pin_file_problem(settings.ISSUER_PKCS11_PIN_FILE)
    if problem:
        problems.append(
            Error(problem, hint="chmod 600 the file, owned by the user the issuer runs as.", id="issuer.E008")
        )
    return problems


GITLAB_REFRESH_POINT_SECONDS = 2 * 86400  # GitLab replaces a token with less than about two days left


@register(deploy=False)
def issuer_knobs_are_safe(app_configs=None, **kwargs):
    """Knob combinations that would let a validator meet an unknown key, or make every sync sign."""
    try:
        knobs = issuer_settings_load()
    except ValueError as error:
        return [Error(str(error), hint="Check the ISSUER_* variables in the environment and .env.", id="issuer.E006")]
    problems = []
    if knobs.PUBLISH_LEAD_SECONDS < knobs.VALIDATOR_CACHE_SECONDS:
        problems.append(
            Error(
                f"ISSUER_PUBLISH_LEAD_SECONDS ({knobs.PUBLISH_LEAD_SECONDS}) is shorter than validators cache the "
                f"JWKS (ISSUER_VALIDATOR_CACHE_SECONDS, {knobs.VALIDATOR_CACHE_SECONDS}): a new key could sign "
                "before a validator has fetched it.",
                id="issuer.E004",
            )
        )
    if knobs.PUBLISH_LEAD_SECONDS >= knobs.ROTATION_PERIOD_SECONDS:
        problems.append(
            Error("ISSUER_PUBLISH_LEAD_SECONDS must be shorter than ISSUER_ROTATION_PERIOD_SECONDS.", id="issuer.E005")
        )
    if knobs.REFRESH_THRESHOLD_SECONDS <= GITLAB_REFRESH_POINT_SECONDS:
        problems.append(
            Warning(
                "ISSUER_REFRESH_THRESHOLD_SECONDS is at most two days: GitLab asks for a new token at about two days "
                "left and would be handed one it wants to replace at once.",
                id="issuer.W001",
            )
        )
    if knobs.REFRESH_THRESHOLD_SECONDS >= knobs.TOKEN_TTL_SECONDS:
        problems.append(
            Warning(
                "ISSUER_REFRESH_THRESHOLD_SECONDS is not shorter than the token TTL: no stored token is ever fresh, "
                "so every sync signs.",
                id="issuer.W002",
            )
        )
    return problems
