from django.apps import AppConfig


class ConfigConfig(AppConfig):
    name = "config"
    verbose_name = "Configuration"

    def ready(self):
        from django.db.backends.signals import connection_created

        from config import api_token_revocation, checks, lookups  # noqa: F401  (checks and the `any_of` lookup)
        from config.postgres import timestamps_parsed_in_c

        connection_created.connect(timestamps_parsed_in_c, dispatch_uid="timestamps-parsed-in-c")
        api_token_revocation.connect()  # a password change or a lost staff status deletes the user's API tokens
