#!/usr/bin/env python
"""Refresh-job benchmark: tokens/s of one worker process against the raw single-core RS256 sign rate, and peak
memory, for 10,000 and 50,000 instances on PostgreSQL.

    .venv/bin/python bench/refresh_bench.py [--counts 10000 50000]

Each count gets a fresh database (DATABASE_URL's server, database issuer_bench_refresh) filled with bulk inserts;
then a child process (one "worker") measures the raw sign rate with the active key (the baseline, same run) and
runs every refresh chunk in turn, reporting tokens/s and its peak RSS. Targets: tokens/s >= 0.7 x the raw sign
rate, and a peak memory that does not grow with the count.
"""

import argparse
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

POPULATE = """
import datetime as dt, secrets, uuid, django
django.setup()
from issuer.keys.services import signing_key_ensure_active
from subscriptions.models import AddOnPurchase, Customer, Instance, Subscription
signing_key_ensure_active()
count = int(__import__("sys").argv[1])
today = dt.date.today()
batch = 5000
for start in range(0, count, batch):
    size = min(batch, count - start)
    customers = Customer.objects.bulk_create([Customer(name=f"bench-{start + i}") for i in range(size)])
    subscriptions = Subscription.objects.bulk_create([
        Subscription(customer=c, license_type="ultimate", seats=100, starts_on=today - dt.timedelta(days=10),
                     expires_on=today + dt.timedelta(days=355)) for c in customers])
    AddOnPurchase.objects.bulk_create([
        AddOnPurchase(subscription=s, add_on=("duo_enterprise" if i % 2 else "duo_pro"), quantity=10 + i % 90,
                      started_on=s.starts_on, expires_on=s.expires_on) for i, s in enumerate(subscriptions)])
    Instance.objects.bulk_create([
        Instance(subscription=s, instance_identifier=uuid.uuid4(), gitlab_version="17.11.0",
                 license_key_digest=secrets.token_hex(32)) for s in subscriptions])
"""

REFRESH = """
import json, resource, time, django
django.setup()
import jwt
from issuer.keys.crypto import private_key_load
from issuer.models import IssuedToken, SigningKey
from issuer.tokens.refresh import token_refresh_chunk, token_refresh_plan

def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

key = SigningKey.objects.get(state="active")
private = private_key_load(key.kid, key.private_key_encrypted)
claims = {"iss": "http://x", "aud": ["gitlab-ai-gateway"], "sub": "00000000-0000-0000-0000-000000000000",
          "scopes": ["code_suggestions"] * 30, "iat": 0, "nbf": 0, "exp": 0, "jti": "x"}
start, signed = time.perf_counter(), 0
while time.perf_counter() - start < 3:
    jwt.encode(claims, private, algorithm="RS256", headers={"kid": key.kid, "typ": "JWT"})
    signed += 1
raw_rate = signed / (time.perf_counter() - start)
before = rss_mb()
start = time.perf_counter()
minted = sum(token_refresh_chunk(first, last) for first, last in token_refresh_plan())
elapsed = time.perf_counter() - start
assert IssuedToken.objects.count() == minted
print(json.dumps({"raw_sign_per_s": raw_rate, "minted": minted, "seconds": elapsed, "tokens_per_s": minted / elapsed,
                  "rss_before_mb": before, "rss_peak_mb": rss_mb()}))
"""


def psql(statement: str) -> None:
    subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-c", statement], check=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", type=int, nargs="+", default=[10_000, 50_000])
    args = parser.parse_args()
    from cryptography.fernet import Fernet

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/issuer_bench_refresh",
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9"),
        "SECRET_KEY": "bench-" + uuid.uuid4().hex,
        "KEY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "LICENSE_KEY_PEPPER": uuid.uuid4().hex,
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    rows = []
    for count in args.counts:
        psql("DROP DATABASE IF EXISTS issuer_bench_refresh")
        psql("CREATE DATABASE issuer_bench_refresh")
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
        subprocess.run([sys.executable, "-c", POPULATE, str(count)], cwd=ROOT, env=env, check=True)
        refresh = [sys.executable, "-c", REFRESH]
        out = subprocess.run(refresh, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
        rows.append((count, json.loads(out.stdout.strip().splitlines()[-1])))
    print(f"{'instances':>10} {'raw sign/s':>11} {'refresh tok/s':>14} {'ratio':>6} {'RSS before':>11} {'RSS peak':>9}")
    for count, r in rows:
        ratio = r["tokens_per_s"] / r["raw_sign_per_s"]
        print(
            f"{count:>10} {r['raw_sign_per_s']:>11.0f} {r['tokens_per_s']:>14.0f} {ratio:>6.2f} "
            f"{r['rss_before_mb']:>9.0f}MB {r['rss_peak_mb']:>7.0f}MB"
        )
    print("targets: ratio >= 0.7 (one worker process vs one core signing); peak RSS flat across counts")


if __name__ == "__main__":
    main()
