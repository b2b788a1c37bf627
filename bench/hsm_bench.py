#!/usr/bin/env python
"""PKCS#11 benchmark: what keeping the signing keys in a token costs, against local keys, in one run.

    .venv/bin/python bench/hsm_bench.py [--seconds 4] [--instances 200] [--rounds 4]

Makes its own SoftHSM2 token (Debian's softhsm2; tests/softhsm.py) and a scratch database (SQLite in a temporary
directory, or DATABASE_URL's), and prints, side by side:

1. signatures/s of RSA-2048 PKCS#1 v1.5 SHA-256: `cryptography` in this process (the local backend's signer)
   against the token (`Pkcs11Signer`, CKM_SHA256_RSA_PKCS), measured in alternating half-second turns, and the
   ratio. The token's crypto back end is the one Debian's libsofthsm2 links (`ldd`, printed).
2. cold syncs/s (`POST /graphql` through Django's test client, each a first sync that signs and records a token)
   with a key of each backend active, in rounds (a new key of the backend activated for each round; which
   backend goes first alternates; 20 syncs with each first, not counted), and the ratio pkcs11 / local.
   Target: >= 0.85.
3. the refresh job's tokens/s (`token_refresh_chunk` over the whole plan, after a new key of the backend is
   activated so every stored token is due) with each backend, alternating.
"""

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SYNC = (
    "query cloudConnectorAccess($licenseKey: String!, $gitlabVersion: String!) { cloudConnectorAccess("
    "licenseKey: $licenseKey, gitlabVersion: $gitlabVersion) { serviceToken { token expiresAt } } }"
)


def _setup(scratch: Path) -> None:
    from tests.softhsm import softhsm_token_init

    for name, value in softhsm_token_init(scratch / "hsm").items():
        os.environ[name] = value
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{scratch}/bench.sqlite3")
    os.environ["INSTANCE_RATE_PER_ADDRESS"] = "1000000/m"  # every sync comes from this one address
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.test_settings"  # throw-away secrets, tasks run inline
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _key_activate(backend: str):
    from issuer.keys.selectors import keyset_invalidate
    from issuer.keys.services import signing_key_activate, signing_key_create

    key = signing_key_create(backend=backend, reason="bench")
    signing_key_activate(key.kid, force=True, reason="bench: measure this backend")
    keyset_invalidate()
    return key


def _instances(count: int) -> list[str]:
    """`count` activated instances (ultimate + Duo Enterprise); their license keys."""
    from subscriptions.models import AddOnPurchase, Customer, Subscription
    from subscriptions.services import instance_activate

    keys = []
    today = dt.date.today()
    for n in range(count):
        customer = Customer.objects.create(name=f"bench {n} {uuid.uuid4().hex[:6]}")
        subscription = Subscription.objects.create(
            customer=customer,
            license_type="ultimate",
            seats=100,
            starts_on=today - dt.timedelta(days=10),
            expires_on=today + dt.timedelta(days=355),
        )
        AddOnPurchase.objects.create(
            subscription=subscription,
            add_on="duo_enterprise",
            quantity=50,
            started_on=subscription.starts_on,
            expires_on=subscription.expires_on,
        )
        activation = instance_activate(
            activation_code=subscription.activation_code,
            instance_identifier=str(uuid.uuid4()),
            hostname="bench.example.test",
            gitlab_version="17.11.0",
        )
        keys.append(activation.license_key)
    return keys


def sign_rates(seconds: float) -> dict:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from issuer.keys.signers import LocalSigner, signer_for

    local = LocalSigner("bench", rsa.generate_private_key(public_exponent=65537, key_size=2048))
    token = signer_for(_key_activate("pkcs11"))
    message = b"eyJhbGciOiJSUzI1NiJ9." + b"x" * 900  # the size of a token's signing input
    counts = {"local": [0, 0.0], "pkcs11": [0, 0.0]}
    for _ in range(int(seconds)):
        for name, signer in (("local", local), ("pkcs11", token)):
            start = time.perf_counter()
            while time.perf_counter() - start < 0.5:
                signer.sign(message)
                counts[name][0] += 1
            counts[name][1] += time.perf_counter() - start
    return {name: done / spent for name, (done, spent) in counts.items()}


WARM_UP = 20
SIGNING = {"local": [0, 0.0], "pkcs11": [0, 0.0]}  # signatures made inside the timed syncs and runs, seconds


def _signing_timed() -> None:
    """Each signer's `sign` counts its calls and time, so the report can say what share of a sync or a refresh
    the signature is."""
    from issuer.keys.signers import LocalSigner, Pkcs11Signer

    for backend, signer_class in (("local", LocalSigner), ("pkcs11", Pkcs11Signer)):
        untimed = signer_class.sign

        def sign(self, signing_input, untimed=untimed, backend=backend):
            start = time.perf_counter()
            try:
                return untimed(self, signing_input)
            finally:
                SIGNING[backend][0] += 1
                SIGNING[backend][1] += time.perf_counter() - start

        signer_class.sign = sign


def _signing_share(seconds: dict) -> str:
    shares = []
    for backend in ("local", "pkcs11"):
        count, spent = SIGNING[backend]
        shares.append(f"{backend} {1000 * spent / max(count, 1):.2f} ms a signature, {spent / seconds[backend]:.0%}")
        SIGNING[backend][:] = [0, 0.0]
    return "of which signing: " + "; ".join(shares)


def _order(turn: int) -> tuple[str, str]:
    """Which backend goes first alternates from round to round: neither always follows the other's work."""
    return ("local", "pkcs11") if turn % 2 == 0 else ("pkcs11", "local")


def _sync(client, license_key: str) -> None:
    response = client.post(
        "/graphql",
        {"query": SYNC, "variables": {"licenseKey": license_key, "gitlabVersion": "17.11.0"}},
        content_type="application/json",
    )
    assert response.status_code == 200 and response.json()["data"]["cloudConnectorAccess"]["serviceToken"]


def cold_syncs(license_keys: list[str], rounds: int) -> dict:
    from django.test import Client

    client = Client()
    pending = iter(license_keys)
    for backend in ("local", "pkcs11"):  # warm-up, not counted: the first requests load URLs, catalog, templates
        _key_activate(backend)
        for license_key in [next(pending) for _ in range(WARM_UP)]:
            _sync(client, license_key)
    for backend in SIGNING:  # the warm-up's signatures are not counted either
        SIGNING[backend][:] = [0, 0.0]
    per_round = (len(license_keys) - 2 * WARM_UP) // (2 * rounds)
    totals = {"local": [0, 0.0], "pkcs11": [0, 0.0]}
    for turn in range(rounds):
        for backend in _order(turn):
            _key_activate(backend)
            batch = [next(pending) for _ in range(per_round)]
            start = time.perf_counter()
            for license_key in batch:
                _sync(client, license_key)
            totals[backend][1] += time.perf_counter() - start
            totals[backend][0] += len(batch)
    return {backend: done / spent for backend, (done, spent) in totals.items()}, {
        backend: spent for backend, (_, spent) in totals.items()
    }


def refresh_rates(rounds: int) -> dict:
    from issuer.tokens.refresh import token_refresh_chunk, token_refresh_plan

    totals = {"local": [0, 0.0], "pkcs11": [0, 0.0]}
    for turn in range(rounds):
        for backend in _order(turn):
            _key_activate(backend)  # every stored token is now signed by a retired key: all due
            start = time.perf_counter()
            minted = sum(token_refresh_chunk(first, last) for first, last in token_refresh_plan())
            totals[backend][1] += time.perf_counter() - start
            totals[backend][0] += minted
    return {backend: done / spent for backend, (done, spent) in totals.items()}, {
        backend: spent for backend, (_, spent) in totals.items()
    }


def softhsm_crypto_backend() -> str:
    linked = subprocess.run(["ldd", "/usr/lib/softhsm/libsofthsm2.so"], capture_output=True, text=True).stdout
    libraries = [
        line.split()[0] for line in linked.splitlines() if "ssl" in line or "crypto" in line or "botan" in line
    ]
    version = subprocess.run(["softhsm2-util", "--version"], capture_output=True, text=True).stdout.strip()
    return f"SoftHSM {version}, linked against {', '.join(libraries) or 'nothing recognised'}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4, help="per backend, for the signature rates")
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        _setup(Path(scratch))
        from django.db import connection

        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
        print(f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, commit {commit.stdout.strip()}, {connection.vendor}")
        print(softhsm_crypto_backend())
        signs = sign_rates(args.seconds)
        print(
            f"signatures/s   local (cryptography) {signs['local']:8.0f}   pkcs11 (SoftHSM2) {signs['pkcs11']:8.0f}"
            f"   ratio {signs['pkcs11'] / signs['local']:.3f}"
        )
        _key_activate("local")
        license_keys = _instances(args.instances)
        _signing_timed()
        syncs, seconds = cold_syncs(license_keys, args.rounds)
        ratio = syncs["pkcs11"] / syncs["local"]
        print(
            f"cold syncs/s   local {syncs['local']:8.1f}   pkcs11 {syncs['pkcs11']:8.1f}   ratio {ratio:.3f}"
            f" (target >= 0.85: {'met' if ratio >= 0.85 else 'NOT met'})"
        )
        print(f"  {_signing_share(seconds)}")
        refresh, seconds = refresh_rates(args.rounds)
        print(
            f"refresh tokens/s local {refresh['local']:8.1f}   pkcs11 {refresh['pkcs11']:8.1f}"
            f"   ratio {refresh['pkcs11'] / refresh['local']:.3f}"
        )
        print(f"  {_signing_share(seconds)}")


if __name__ == "__main__":
    main()
