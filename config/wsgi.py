import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

if os.environ.get("SKIP_STARTUP_CHECKS") != "1":
    from config.startup import run_startup_checks

    run_startup_checks()
