from django.apps import AppConfig


class ConfigConfig(AppConfig):
    name = "config"
    verbose_name = "Configuration"

    def ready(self):
        from django.db.backends.signals import connection_created

        from config import checks, lookups  # noqa: F401  (register the system checks and the `any_of` lookup)
        from config.postgres import timestamps_parsed_in_c

        connection_created.connect(timestamps_parsed_in_c, dispatch_uid="timestamps-parsed-in-c")
