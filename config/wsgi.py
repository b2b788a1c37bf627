import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

if not settings.SKIP_STARTUP_CHECKS:
    from config.startup import run_startup_checks

    run_startup_checks()
