import json

from django.core.management.base import BaseCommand, CommandError

from issuer import services
from issuer.encryption import KeyEncryptionError
from issuer.models import SigningKey


def _describe(key: SigningKey) -> dict:
    return {
        "kid": key.kid,
        "state": key.state,
        "key_size": key.key_size,
        "created_at": key.created_at.isoformat(),
        "activated_at": key.activated_at.isoformat() if key.activated_at else None,
        "retired_at": key.retired_at.isoformat() if key.retired_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


class Command(BaseCommand):
    help = "The operator's signing-key lifecycle: list, create, activate, retire, revoke, purge, rewrap, ensure."
    requires_system_checks = []  # the tool that repairs what the checks complain about must always run

    def add_arguments(self, parser):
        parser.add_argument(
            "action", choices=["list", "create", "activate", "retire", "revoke", "purge", "rewrap", "ensure"]
        )
        parser.add_argument("--kid", help="the key to act on")
        parser.add_argument("--force", action="store_true", help="activate or purge before the safe time")
        parser.add_argument("--key-size", type=int, choices=[2048, 3072, 4096], help="for create")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, action, kid=None, force=False, key_size=None, json=False, **options):
        if action in ("activate", "retire", "revoke", "purge") and not kid:
            raise CommandError(f"{action} needs --kid")
        try:
            result = self._run(action, kid, force, key_size)
        except (services.SigningKeyRefused, KeyEncryptionError) as error:
            raise CommandError(str(error)) from None
        self._print(result, json)

    def _run(self, action, kid, force, key_size):
        if action == "list":
            return [_describe(key) for key in SigningKey.objects.order_by("created_at")]
        if action == "create":
            return _describe(services.signing_key_create(key_size=key_size))
        if action == "activate":
            return _describe(services.signing_key_activate(kid, force=force))
        if action == "retire":
            return _describe(services.signing_key_retire(kid))
        if action == "revoke":
            return _describe(services.signing_key_revoke(kid))
        if action == "purge":
            services.signing_key_purge(kid, force=force)
            return {"kid": kid, "purged": True}
        if action == "ensure":
            return _describe(services.signing_key_ensure_active())
        return {"rewrapped": services.signing_keys_rewrap()}

    def _print(self, result, as_json):
        if as_json:
            self.stdout.write(json.dumps(result))
            return
        for row in result if isinstance(result, list) else [result]:
            self.stdout.write("  ".join(f"{key}={value}" for key, value in row.items() if value is not None))
