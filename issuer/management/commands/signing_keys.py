"""`manage.py signing_keys`: the operator's door onto the key lifecycle (PROTOCOL §8), through the same action
table as the keys page and the admin API."""

import json

from django.core.management.base import BaseCommand, CommandError

from audit.reasons import reason_text
from issuer.keys import services
from issuer.keys.crypto import ALLOWED_KEY_SIZES
from issuer.keys.encryption import KeyEncryptionError
from issuer.keys.selectors import signing_key_describe, signing_key_revocation_outcome, signing_key_timeline


def _iso(moment):
    return moment.isoformat() if moment else None


class Command(BaseCommand):
    help = "The operator's signing-key lifecycle: list, create, activate, retire, revoke, purge, rewrap, ensure."
    requires_system_checks = []  # the tool that repairs what the checks complain about must always run

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["list", "create", *services.SIGNING_KEY_ACTIONS, "rewrap", "ensure"])
        parser.add_argument("--kid", help="the key to act on")
        parser.add_argument("--force", action="store_true", help="activate or purge before the safe time")
        parser.add_argument(
            "--reason", default="", help="why (recorded in the audit trail; required for revoke and with --force)"
        )
        parser.add_argument("--key-size", type=int, choices=ALLOWED_KEY_SIZES, help="for create")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, action, kid=None, force=False, reason="", key_size=None, json=False, **options):
        if action in services.SIGNING_KEY_ACTIONS and not kid:
            raise CommandError(f"{action} needs --kid")
        reason = reason_text(reason)  # invisible characters alone are no reason (audit.reasons)
        try:
            result = self._run(action, kid, force, reason, key_size)
        except services.SigningKeyTooEarly as error:
            raise CommandError(
                f'{error.reason} To {action} now anyway: --force --reason "why" (the reason goes to the audit trail).'
            ) from None
        except (services.SigningKeyRefused, KeyEncryptionError) as error:
            raise CommandError(str(error)) from None
        self._print(result, json)

    def _run(self, action, kid, force, reason, key_size):
        if action == "list":  # with the due times the keys page shows
            return [
                {
                    **signing_key_describe(entry.key),
                    "activation_due": _iso(entry.activation_due),
                    "purge_due": _iso(entry.purge_due),
                }
                for entry in signing_key_timeline()
            ]
        if action == "create":
            return signing_key_describe(services.signing_key_create(key_size=key_size, reason=reason))
        if action == "ensure":
            return signing_key_describe(services.signing_key_ensure_active())
        if action == "rewrap":
            rewrapped = services.signing_keys_rewrap()
            return {"keys_rewrapped": rewrapped.keys, "tokens_rewrapped": rewrapped.tokens}
        key = services.signing_key_act(action, kid, force=force, reason=reason)
        if key is None:
            return {"kid": kid, "purged": True}
        if action == "revoke":
            outcome = signing_key_revocation_outcome()
            if outcome["remint"] == "pending":
                self.stderr.write(
                    "Warning: the token re-mint could not be queued (broker unreachable); the next refresh run does "
                    "it, or run `manage.py token_refresh` (no broker needed)."
                )
            return {**signing_key_describe(key), **outcome}
        return signing_key_describe(key)

    def _print(self, result, as_json):
        if as_json:
            self.stdout.write(json.dumps(result))
            return
        for row in result if isinstance(result, list) else [result]:
            self.stdout.write("  ".join(f"{key}={value}" for key, value in row.items() if value is not None))
