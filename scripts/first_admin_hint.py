"""`make run`: names the command that makes the first back-office admin, only while there is no user at all."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402

if not get_user_model().objects.exists():
    print(f"First admin: {sys.argv[1] if len(sys.argv) > 1 else 'python'} manage.py createsuperuser")
