"""Start-up checks: keys that do not decrypt, and zero or two active keys."""

from django.core.checks import Error, register
from django.db import DatabaseError

from issuer import encryption
from issuer.models import SigningKey


@register(deploy=False)
def signing_keys_usable(app_configs=None, databases=None, **kwargs):
    if not databases:  # checks without database access (e.g. `makemigrations`) skip this
        return []
    try:
        keys = list(
            SigningKey.objects.exclude(state=SigningKey.State.REVOKED).only("kid", "state", "private_key_encrypted")
        )
    except DatabaseError:  # not migrated yet: `migrate` must still run
        return []
    problems = []
    for key in keys:
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
