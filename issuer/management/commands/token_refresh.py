"""`manage.py token_refresh`: the refresh job, run here and now (no worker needed), saying what it did. The scheduled
task fans the same chunks out over the workers; `celery call` would only print a task id."""

from django.core.management.base import BaseCommand

from issuer.tokens import refresh


class Command(BaseCommand):
    help = "Run the token refresh job synchronously: pre-mint every instance's due token, and print how many."

    def handle(self, *args, **options):
        minted: list[int] = []
        chunks = refresh.token_refresh_run(lambda first, last: minted.append(refresh.token_refresh_chunk(first, last)))
        self.stdout.write(
            f"Token refresh: {sum(minted)} token{'s' if sum(minted) != 1 else ''} minted "
            f"in {chunks} chunk{'s' if chunks != 1 else ''} of instances; expired tokens' ciphertexts dropped."
        )
