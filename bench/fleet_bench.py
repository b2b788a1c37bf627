#!/usr/bin/env python
"""Fleet-scale benchmark: every back-office page and admin API list, timed in-process as a superuser, at two fleet
sizes side by side.

    .venv/bin/python bench/fleet_bench.py [--sizes 10000 1000000] [--runs 5]

Each size gets a fresh PostgreSQL database (issuer_bench_fleet_<size> on the local server), migrated, then
filled with SQL `generate_series` (minutes, not hours): one customer, subscription, add-on purchase and instance
per instance, 3 seat reports per instance, token records, audit events, and the rollups. The token records are
those of an instance the refresh job keeps fresh: 20 per instance over the last ten days (one every 12 hours: two
million at 100,000 instances, the load on the issued-token list's default page) after 10 over the year before
(monthly partitions as the retention job leaves them). A child process then times each page: its first request
on a fresh database connection, then the median of --runs warm repeats, and counts its queries. Searches use narrow
terms (part of one host or customer name, a UUID, a prefix) and broad ones people type (a company word, a domain
suffix).

`--reuse` times the databases an earlier run filled again, after migrating them to the current code.

Targets: every page <= 300 ms at the larger size and <= 3x its time at the smaller; queries per page do not grow.
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
DATABASE = "issuer_bench_fleet_{size}"  # one per size, so --reuse can time a filled fleet again
RECENT_TOKENS = 20  # token records per instance over the last ten days
HISTORY_TOKENS = 10  # token records per instance over the year before

FILL = """
SET synchronous_commit = off;
SET maintenance_work_mem = '1GB';
DO $$  -- the monthly partitions the retention job would have created over the past 14 months
DECLARE
    month date := date_trunc('month', now() AT TIME ZONE 'UTC') - interval '14 months';
BEGIN
    WHILE month < date_trunc('month', now() AT TIME ZONE 'UTC') LOOP
        EXECUTE format(
            'CREATE TABLE IF NOT EXISTS %I PARTITION OF issuer_issuedtoken FOR VALUES FROM (%L) TO (%L)',
            'issuer_issuedtoken_' || to_char(month, '"y"YYYY"m"MM'),
            (month::timestamp AT TIME ZONE 'UTC'), ((month + interval '1 month')::timestamp AT TIME ZONE 'UTC'));
        month := month + interval '1 month';
    END LOOP;
END $$;
INSERT INTO subscriptions_customer (id, name, contact_email, created_at)
SELECT g, initcap(substr(md5('c' || g), 1, 7)) || ' ' || (ARRAY['GmbH', 'Inc.', 'Ltd', 'AG', 'S.A.', 'LLC'])[1 + g % 6]
          || ' ' || g, 'admin' || g || '@example.test',
       now() - (g % 700) * interval '1 day'
FROM generate_series(1, :n) g;
INSERT INTO subscriptions_subscription (id, license_type, seats, starts_on, expires_on, trial, activation_code,
    suspended, created_at, updated_at, customer_id, first_activated_at)
SELECT g, CASE WHEN g % 3 = 0 THEN 'premium' ELSE 'ultimate' END, 10 + g % 500, current_date - (g % 300),
       current_date + 1 + (g % 400), false, upper(substr(md5('code' || g), 1, 24)), false, now(), now(), g,
       now() - (g % 300) * interval '1 day'
FROM generate_series(1, :n) g;
INSERT INTO subscriptions_addonpurchase (id, add_on, quantity, started_on, expires_on, trial, purchase_id,
    cancelled_at, created_at, updated_at, subscription_id)
SELECT g, CASE WHEN g % 2 = 0 THEN 'duo_pro' ELSE 'duo_enterprise' END, 5 + g % 100, current_date - (g % 300),
       current_date + 1 + (g % 400), false, 'P-' || upper(substr(md5('p' || g), 1, 12)), NULL, now(), now(), g
FROM generate_series(1, :n) g;
INSERT INTO subscriptions_instance (id, instance_identifier, unique_instance_id, hostname, gitlab_version,
    activated_at, license_key_digest, license_key_prefix, suspended, created_at, subscription_id,
    deployment_type, last_error, last_error_at, last_seen_instance_id)
SELECT g, md5('i' || g)::uuid, '', 'gitlab.' || substr(md5('h' || g), 1, 9) || '.'
          || (ARRAY['example.com', 'corp.net', 'io', 'internal', 'co.uk'])[1 + g % 5],
       (ARRAY['17.11.0', '18.2.1', '18.8.0', '19.0.2', '19.1.0-ee'])[1 + g % 5],
       now() - (g % 300) * interval '1 day',
       md5('lk' || g) || md5('lk2' || g), 'cdl_' || substr(md5('lk' || g), 1, 6), false, now(), g,
       'self-managed', '', NULL, ''
FROM generate_series(1, :n) g;
INSERT INTO subscriptions_instancelastsync (instance_id, at)
SELECT g, CASE WHEN g % 20 = 0 THEN now() - interval '5 days' ELSE now() - (g % 3000) * interval '1 second' END
FROM generate_series(1, :n) g;
INSERT INTO subscriptions_seatreport (reported_at, received_at, gitlab_version, billable_users, max_historical_users,
    add_on_metrics, has_overage, instance_id)
SELECT now() - (r % 3) * interval '1 day', now(), '19.0.2', 10 + r % 400, 20 + r % 400,
       jsonb_build_array(jsonb_build_object('add_on_type', 'duo_enterprise', 'purchased_seats', 50,
                                            'assigned_seats', CASE WHEN r % 150 = 0 THEN 60 ELSE 40 END)),
       r % 150 = 0, 1 + r / 3
FROM generate_series(0, 3 * :n - 1) r;
INSERT INTO issuer_issuedtoken (jti, kid, scopes, audiences, duo_seat_count, issued_at, expires_at, fingerprint,
    reason, token_encrypted, instance_id)
SELECT gen_random_uuid(), :'kid',
       '["code_suggestions", "duo_chat", "explain_vulnerability", "resolve_vulnerability", "troubleshoot_job",
         "generate_commit_message", "summarize_comments", "glab_ask_git_command"]'::jsonb,
       '["gitlab-ai-gateway"]'::jsonb, 50, issued_at, issued_at + interval '3 days', md5('f' || (t % :n)),
       CASE WHEN t < :n THEN 'sync' ELSE 'refresh_expiry' END, NULL, 1 + t % :n
FROM generate_series(0, (:history + :recent) * :n - 1) t,
     -- oldest first, as the records arrive: the history one per 39 days before the last ten, then the recent ones
     -- every 12 hours within them, each instance at its own minute
     LATERAL (SELECT CASE WHEN t < :history * :n
                          THEN now() - interval '10 days' - (:history - 1 - t / :n) * interval '39 days'
                          ELSE now() - (:history + :recent - 1 - t / :n) * interval '12 hours'
                     END - (t % 720) * interval '1 minute' AS issued_at) at_time;
INSERT INTO audit_auditevent (at, actor_kind, actor_name, actor_user_id, action, object_type, object_id,
    object_repr, changes, reason, request_id, client_address)
SELECT now() - (e % 400) * interval '1 day', 'instance', md5('i' || (1 + e)), NULL, 'instance.activate',
       'instance', (1 + e)::text, '', '{}'::jsonb, '', '', NULL
FROM generate_series(0, :n - 1) e;
SELECT setval(pg_get_serial_sequence(t, 'id'), (SELECT max(id) FROM subscriptions_customer))
FROM unnest(ARRAY['subscriptions_customer', 'subscriptions_subscription', 'subscriptions_addonpurchase',
                  'subscriptions_instance']) t;
ANALYZE;
"""

TIME = """
import json, statistics, sys, time, django
django.setup()
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from issuer.models import IssuedToken, SigningKey
from subscriptions.models import AddOnPurchase, Instance, Subscription

runs, n = int(sys.argv[1]), int(sys.argv[2])
user = User.objects.filter(username="bench-root").first()
user = user or User.objects.create_superuser("bench-root", password="bench-pw-12345")
client = Client()
client.force_login(user)
middle = n // 2
instance = Instance.objects.get(pk=middle)
token = IssuedToken.objects.filter(instance=instance).order_by("-issued_at").first()
kid = SigningKey.objects.get(state="active").kid
purchase = AddOnPurchase.objects.get(pk=middle)
customer_word = instance.subscription.customer.name.split()[0][:6].lower()  # part of a name, as people type
# Broad terms people type, each matching a sixth or a fifth of the fleet: a word of the company's legal form, a
# domain suffix (the fill's names end in one of six forms and host names in one of five domains).
company_word, domain_suffix = "GmbH", "corp.net"
pages = {
    "dashboard": "/admin/",
    "instance list": "/admin/subscriptions/instance/",
    "instance search: host name": f"/admin/subscriptions/instance/?q={instance.hostname.split('.')[1][:7]}",
    "instance search: instance id": f"/admin/subscriptions/instance/?q={instance.instance_identifier}",
    "instance search: license prefix": f"/admin/subscriptions/instance/?q={instance.license_key_prefix}",
    "instance search: customer name": f"/admin/subscriptions/instance/?q={customer_word}",
    "instance search: domain suffix (broad)": f"/admin/subscriptions/instance/?q={domain_suffix}",
    "instance search: company word (broad)": f"/admin/subscriptions/instance/?q={company_word}",
    "instance overview": f"/admin/instances/{middle}/overview/",
    "issued-token list": "/admin/issuer/issuedtoken/",
    "issued-token search: jti": f"/admin/issuer/issuedtoken/?q={token.jti}",
    "issued-token search: kid": f"/admin/issuer/issuedtoken/?q={kid}",
    "issued-token search: instance id": f"/admin/issuer/issuedtoken/?q={instance.instance_identifier}",
    "seat-report list": "/admin/subscriptions/seatreport/",
    "subscription list": "/admin/subscriptions/subscription/",
    "subscription search: customer": f"/admin/subscriptions/subscription/?q={customer_word}",
    "subscription search: company word (broad)": f"/admin/subscriptions/subscription/?q={company_word}",
    "subscription page": f"/admin/subscriptions/subscription/{middle}/change/",
    "customer list": "/admin/subscriptions/customer/",
    "customer search: name": f"/admin/subscriptions/customer/?q={customer_word}",
    "customer search: company word (broad)": f"/admin/subscriptions/customer/?q={company_word}",
    "add-on purchase list": "/admin/subscriptions/addonpurchase/",
    "add-on purchase search: purchase id": f"/admin/subscriptions/addonpurchase/?q={purchase.purchase_id}",
    "audit event list": "/admin/audit/auditevent/",
    "keys page": "/admin/keys/",
    "catalog page": "/admin/catalog/",
    "API customers": "/api/v1/admin/customers/",
    "API subscriptions": "/api/v1/admin/subscriptions/",
    "API add-on purchases": "/api/v1/admin/add_on_purchases/",
    "API instances": "/api/v1/admin/instances/",
    "API signing keys": "/api/v1/admin/signing_keys/",
    "API audit events": "/api/v1/admin/audit-events",
}
results = {}
for name, path in pages.items():
    # The first run is what a person sees after a while: a new database connection (the server process has
    # rendered other pages before). The warm repeats follow on that connection.
    connection.close()
    start = time.perf_counter()
    response = client.get(path)
    first = (time.perf_counter() - start) * 1000
    assert response.status_code == 200, (name, response.status_code)
    times = []
    for _ in range(runs):
        with CaptureQueriesContext(connection) as queries:
            start = time.perf_counter()
            client.get(path)
            times.append((time.perf_counter() - start) * 1000)
    results[name] = {"first_ms": first, "ms": statistics.median(times), "queries": len(queries)}
print(json.dumps(results))
"""


def psql(*args: str, database: str = "postgres", stdin: str | None = None) -> None:
    command = [
        "psql",
        "-q",
        "-o",
        "/dev/null",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        "127.0.0.1",
        "-U",
        "postgres",
        "-d",
        database,
        *args,
    ]
    subprocess.run(command, check=True, input=stdin, text=True)


def database_exists(name: str) -> bool:
    query = ["psql", "-Atq", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c"]
    found = subprocess.run(
        [*query, f"SELECT 1 FROM pg_database WHERE datname = '{name}'"], capture_output=True, text=True
    )
    return found.stdout.strip() == "1"


def fill(size: int, env: dict, reuse: bool) -> float | None:
    """A fresh, filled database for `size` (None: an earlier run's was reused, migrated to this code)."""
    database = DATABASE.format(size=size)
    migrate = [sys.executable, "manage.py", "migrate", "--noinput", "-v0"]
    if reuse and database_exists(database):
        # (no system checks: a database filled by an older run may hold a key encrypted with other bench secrets)
        subprocess.run([*migrate, "--skip-checks"], cwd=ROOT, env=env, check=True)
        rollup = [sys.executable, "manage.py", "fleet_rollup", "-v0", "--skip-checks"]
        subprocess.run(rollup, cwd=ROOT, env=env, check=True)
        return None
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
    counts = ["-v", f"n={size}", "-v", f"recent={RECENT_TOKENS}", "-v", f"history={HISTORY_TOKENS}"]
    psql(*counts, "-v", f"kid={json.loads(kid.stdout)['kid']}", database=database, stdin=FILL)
    subprocess.run([sys.executable, "manage.py", "fleet_rollup", "-v0"], cwd=ROOT, env=env, check=True)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs=2, default=[10_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="time the databases an earlier run filled (migrated)")
    args = parser.parse_args()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9"),
        # fixed, throw-away secrets, so a later --reuse run can read what this one wrote
        "SECRET_KEY": "fleet-bench-secret-key-not-for-production",
        "KEY_ENCRYPTION_KEYS": base64.urlsafe_b64encode(hashlib.sha256(b"fleet-bench").digest()).decode(),
        "LICENSE_KEY_PEPPER": "fleet-bench-pepper",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"fleet bench, {started}, commit {commit.stdout.strip() or 'unknown'}", flush=True)
    measured = {}
    for size in args.sizes:
        env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{DATABASE.format(size=size)}"
        seconds = fill(size, env, args.reuse)
        filled = "reused" if seconds is None else f"filled in {seconds:.0f} s"
        records = f"{RECENT_TOKENS * size:,} token records in the last ten days, {HISTORY_TOKENS * size:,} before"
        print(f"{size:,} instances ({records}): {filled}", flush=True)
        out = subprocess.run(
            [sys.executable, "-c", TIME, str(args.runs), str(size)], cwd=ROOT, env=env, capture_output=True, text=True
        )
        if out.returncode:
            sys.exit(f"timing failed at {size:,}:\n{out.stderr[-3000:]}")
        measured[size] = json.loads(out.stdout.strip().splitlines()[-1])
    small, large = args.sizes
    sizes = f"{small:,}: first / warm ms (queries) | {large:,}: first / warm ms (queries)"
    print(f"\n| page | {sizes} | growth | target met |")
    print("|---|---:|---:|---:|---|")
    slow_first = []
    for name, low in measured[small].items():
        high = measured[large][name]
        growth = high["ms"] / low["ms"]
        met = high["ms"] <= 300 and growth <= 3 and high["queries"] <= low["queries"]
        if high["first_ms"] > 300:
            slow_first.append(name)
        print(
            f"| {name} | {low['first_ms']:.0f} / {low['ms']:.0f} ({low['queries']}) | "
            f"{high['first_ms']:.0f} / {high['ms']:.0f} ({high['queries']}) | {growth:.1f}× | "
            f"{'yes' if met else 'NO'} |"
        )
    print(
        "\nfirst: the first request on a fresh database connection; warm: the median of the repeats after it"
        "\ntargets (warm): <= 300 ms at the larger size, <= 3x the smaller size's time, queries not growing"
        f"\nfirst runs over 300 ms at {large:,}: {', '.join(slow_first) or 'none'}"
    )


if __name__ == "__main__":
    main()
