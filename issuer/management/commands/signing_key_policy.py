"""`manage.py signing_key_policy`: the hourly rotation policy, run here and now, saying what it did (or that nothing
was due, and when the next step is)."""

from django.core.management.base import BaseCommand

from issuer.keys.selectors import signing_key_timeline
from issuer.keys.services import signing_key_policy_run


class Command(BaseCommand):
    help = "Run the signing-key rotation policy synchronously and print each action it took."

    def handle(self, *args, **options):
        report = signing_key_policy_run()
        for action in report.actions:
            self.stdout.write(f"Signing-key policy: {action}")
        if not report.actions:
            self.stdout.write("Signing-key policy: nothing was due.")
        for entry in signing_key_timeline():
            if entry.activation_due:
                self.stdout.write(f"Next: activate {entry.key.kid} at {entry.activation_due:%Y-%m-%d %H:%M} UTC")
            if entry.purge_due:
                self.stdout.write(f"Next: purge {entry.key.kid} at {entry.purge_due:%Y-%m-%d %H:%M} UTC")
