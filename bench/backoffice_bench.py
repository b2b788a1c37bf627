#!/usr/bin/env python
"""Back-office benchmark at fleet scale: the customer hub and every CSV export, timed in-process as a superuser.

    .venv/bin/python bench/backoffice_bench.py [--size 1000000] [--database issuer_bench_backoffice] [--reuse]

The database (on the local PostgreSQL server) is filled with bench/fleet_bench.py's SQL: one customer,
subscription, add-on purchase and instance per instance, 3 seat reports per instance, one token record per
instance and one audit event per instance. A child process then measures, on a fresh database connection each:

- the customer hub (a customer in the middle of the fleet): the whole page, which is its first byte;
- each export (subscriptions, instances, add-on purchases, seat reports, tokens, audit events): the time to its
  first data row (the header line leaves before any query, so it would flatter the figure);
- the full 1M-instance export: its time, lines per second, and the process's RSS growth (peak over the start),
  sampled every 10,000 rows; beside it, the baseline of the same rows read by the same cursor without CSV.

Targets: hub and first rows <= 300 ms; RSS growth of the instance export <= +50 MB.
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.fleet_bench import FILL, database_exists, psql  # noqa: E402

MEASURE = """
import gc, json, sys, time, django
django.setup()
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from subscriptions.models import Customer, Instance

def rss_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

size = int(sys.argv[1])
user = User.objects.filter(username="bench-root").first() or User.objects.create_superuser("bench-root", "", "x")
client = Client()
client.force_login(user)
results = {}

customer = Customer.objects.get(pk=size // 2)
client.get("/admin/subscriptions/customer/1/change/")  # the process has rendered a page before, as a server's has
client.get("/admin/subscriptions/instance/")
connection.close()
start = time.perf_counter()
page = client.get(f"/admin/subscriptions/customer/{customer.pk}/change/")
assert page.status_code == 200 and b"customer-hub" in page.content, page.status_code
results["customer hub: whole page"] = (time.perf_counter() - start) * 1000
connection.close()
start = time.perf_counter()
client.get(f"/admin/subscriptions/customer/{customer.pk}/change/")
results["customer hub: again, warm"] = (time.perf_counter() - start) * 1000

exports = {
    "subscriptions": "/admin/subscriptions/subscription/export.csv",
    "instances": "/admin/subscriptions/instance/export.csv",
    "add-on purchases": "/admin/subscriptions/addonpurchase/export.csv",
    "seat reports": "/admin/subscriptions/seatreport/export.csv",
    "tokens": "/admin/issuer/issuedtoken/export.csv",
    "audit events": "/admin/audit/auditevent/export.csv",
    "instances, searched (q=corp.net)": "/admin/subscriptions/instance/export.csv?q=corp.net",
    "subscriptions, status=expiring": "/admin/subscriptions/subscription/export.csv?status=expiring",
}
for name, path in exports.items():
    connection.close()
    start = time.perf_counter()
    response = client.get(path)
    assert response.status_code == 200, (name, response.status_code)
    lines = iter(response.streaming_content)
    next(lines)  # the header
    next(lines)  # the first rows: the query has run and its first piece arrived
    results[f"export {name}: first row"] = (time.perf_counter() - start) * 1000
    response.close()

connection.close()
gc.collect()
before = rss_mb()
start = time.perf_counter()
rows = 0
peak = before
for row in Instance.objects.order_by("-pk").values_list(
    "instance_identifier", "hostname", "subscription__customer__name", "subscription_id", "gitlab_version",
    "deployment_type", "unique_instance_id", "license_key_prefix", "activated_at", "last_sync__at", "suspended",
    "last_error", "last_error_at",
).iterator(chunk_size=2000):
    rows += 1
    if rows % 10000 == 0:
        peak = max(peak, rss_mb())
baseline_seconds = time.perf_counter() - start
results["baseline: the same rows read by the cursor, no CSV (s)"] = baseline_seconds
results["baseline: RSS growth (MB)"] = peak - before

connection.close()
gc.collect()
before = rss_mb()
start = time.perf_counter()
response = client.get("/admin/subscriptions/instance/export.csv")
size_bytes = 0
lines = 0
peak = before
for piece in response.streaming_content:
    size_bytes += len(piece)
    lines += piece.count(10)  # newline bytes
    if lines % 10000 < 1000:
        peak = max(peak, rss_mb())
response.close()
seconds = time.perf_counter() - start
results["instance export: lines after the header"] = lines - 1
results["instance export: MB written"] = size_bytes / 1e6
results["instance export: full time (s)"] = seconds
results["instance export: lines per second"] = (lines - 1) / seconds
results["instance export: RSS at start (MB)"] = before
results["instance export: RSS growth (MB)"] = peak - before
print(json.dumps(results))
"""


def fill(size: int, database: str, env: dict, reuse: bool) -> str:
    migrate = [sys.executable, "manage.py", "migrate", "--noinput", "-v0"]
    if reuse and database_exists(database):
        subprocess.run([*migrate, "--skip-checks"], cwd=ROOT, env=env, check=True)
        return "reused"
    psql("-c", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    psql("-c", f"CREATE DATABASE {database}")
    subprocess.run(migrate, cwd=ROOT, env=env, check=True)
    kid = subprocess.run(
        [sys.executable, "manage.py", "signing_keys", "ensure", "--json"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    start = time.perf_counter()
    counts = ["-v", f"n={size}", "-v", "recent=1", "-v", "history=0", "-v", f"kid={json.loads(kid.stdout)['kid']}"]
    psql(*counts, database=database, stdin=FILL)
    return f"filled in {time.perf_counter() - start:.0f} s"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--database", default="issuer_bench_backoffice")
    parser.add_argument("--reuse", action="store_true", help="measure the database an earlier run filled (migrated)")
    args = parser.parse_args()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{args.database}",
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9"),
        "SECRET_KEY": "backoffice-bench-secret-key-not-for-production",
        "KEY_ENCRYPTION_KEYS": base64.urlsafe_b64encode(hashlib.sha256(b"backoffice-bench").digest()).decode(),
        "LICENSE_KEY_PEPPER": "backoffice-bench-pepper",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"back-office bench, {started}, commit {commit.stdout.strip() or 'unknown'}", flush=True)
    print(f"{args.size:,} instances in {args.database}: {fill(args.size, args.database, env, args.reuse)}", flush=True)
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(args.size)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if out.returncode:
        sys.exit(f"measuring failed:\n{out.stderr[-3000:]}")
    results = json.loads(out.stdout.strip().splitlines()[-1])
    print("\n| measure | value | target | met |")
    print("|---|---:|---:|---|")
    for name, value in results.items():
        if name.endswith(": first row") or name.startswith("customer hub"):
            print(f"| {name} | {value:.0f} ms | 300 ms | {'yes' if value <= 300 else 'NO'} |")
        elif name == "instance export: RSS growth (MB)":
            print(f"| {name} | {value:+.1f} MB | +50 MB | {'yes' if value <= 50 else 'NO'} |")
        else:
            print(f"| {name} | {value:,.1f} | | |")


if __name__ == "__main__":
    main()
