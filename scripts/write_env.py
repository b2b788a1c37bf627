"""Writes a local .env with freshly generated secrets, once. `make run` calls it; an existing .env is kept."""

import secrets
import sys
from pathlib import Path

from cryptography.fernet import Fernet

path = Path(sys.argv[1] if len(sys.argv) > 1 else ".env")
if path.exists():
    sys.exit(0)
path.write_text(
    "# Written by `make run` with fresh secrets. Keep it private; see .env.example for every variable.\n"
    f"SECRET_KEY={secrets.token_urlsafe(50)}\n"
    f"KEY_ENCRYPTION_KEYS={Fernet.generate_key().decode()}\n"
    f"LICENSE_KEY_PEPPER={secrets.token_urlsafe(32)}\n"
)
path.chmod(0o600)
print(f"Wrote {path} with new secrets.")
