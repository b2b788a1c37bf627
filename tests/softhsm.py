"""A SoftHSM2 token of its own for each pytest run and xdist worker: its own SOFTHSM2_CONF and token directory in
the run's temporary directory, found by its label (slot numbers change as tokens are made)."""

import os
import subprocess
from pathlib import Path

from tests.requirements import SOFTHSM2_MODULE

USER_PIN = "4173-test-pin"
SO_PIN = "9265-test-so-pin"


def softhsm_token_init(directory: Path) -> dict:
    """Makes the token and returns the issuer's settings that point at it. SoftHSM2 reads SOFTHSM2_CONF when the
    library is initialised, so this runs before this process first loads it."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    tokens = directory / "tokens"
    tokens.mkdir(parents=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    label = f"issuer-tests-{worker}"
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", USER_PIN, "--so-pin", SO_PIN],
        check=True,
        capture_output=True,
    )
    pin_file = directory / "pin"
    pin_file.write_text(USER_PIN + "\n")
    pin_file.chmod(0o600)
    return {
        "ISSUER_PKCS11_MODULE": SOFTHSM2_MODULE,
        "ISSUER_PKCS11_TOKEN_LABEL": label,
        "ISSUER_PKCS11_PIN_FILE": str(pin_file),
        "ISSUER_PKCS11_PIN": "",
    }
