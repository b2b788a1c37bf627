"""A web worker freezes what start-up made, so no full garbage collection walks it again (the latency tail)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import gc, sys
sys.path.insert(0, ".")
before = gc.get_freeze_count()
import config.wsgi
print(before, gc.get_freeze_count())
"""


def test_the_wsgi_application_freezes_what_start_up_made(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "1",
        "SKIP_STARTUP_CHECKS": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
    }
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    before, after = map(int, done.stdout.split())
    assert before == 0
    assert after > 50_000, "Django, the apps and the schema are in the permanent generation"
