#!/usr/bin/env python
"""A fleet sync's one PostgreSQL read (its inputs: instance, subscription, purchases, last sync, newest stored token)
over a year of token records, as a production issuer keeps them (400 days, monthly partitions), with the newest
token looked for within one lifetime (as `issuer/sync_state/store.py` reads it; here `now()` minus the lifetime
stands for the sync's bound parameter, pruned the same way) against the same read over every partition (as it read
before): pgbench, prepared statements, one client, interleaved turns.

    .venv/bin/python bench/inputs_read_bench.py [--instances 20000] [--months 13] [--per-month 12] [--seconds 5]

Uses DATABASE_URL (default postgres://postgres@127.0.0.1:5432/issuer_inputs_bench, recreated). Each instance gets
`--per-month` expired token records (ciphertext dropped, as the daily job leaves them) in each of `--months` past
months, and one valid token of today. Prints each turn's statements a second and mean latency, and the medians'
ratio. The bench's `http_bench.py` fleet has one token an instance in this month's partition, so it cannot show
this (issue 29).
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

FILL = """
SET synchronous_commit = off;
INSERT INTO subscriptions_customer (id, name, contact_email, created_at)
SELECT id, 'bench-' || id, '', now() FROM generate_series(1, {instances}) id;
INSERT INTO subscriptions_subscription (id, license_type, seats, starts_on, expires_on, trial, activation_code,
    suspended, created_at, updated_at, customer_id, first_activated_at)
SELECT id, 'ultimate', 100, current_date - 400, current_date + 30, false, upper(substr(md5('b' || id), 1, 24)),
       false, now(), now(), id, now()
FROM generate_series(1, {instances}) id;
INSERT INTO subscriptions_addonpurchase (id, add_on, quantity, started_on, expires_on, trial, purchase_id,
    cancelled_at, created_at, updated_at, subscription_id)
SELECT id, 'duo_enterprise', 50, current_date - 400, current_date + 30, false, 'B-' || id, NULL, now(), now(), id
FROM generate_series(1, {instances}) id;
INSERT INTO subscriptions_instance (id, instance_identifier, unique_instance_id, hostname, gitlab_version,
    activated_at, license_key_digest, license_key_prefix, suspended, created_at, subscription_id,
    deployment_type, last_error, last_error_at, last_seen_instance_id)
SELECT id, md5('bench-instance' || id)::uuid, '', 'bench-' || id, '17.11.0', now() - interval '400 days',
       md5('digest' || id), '', false, now(), id, 'self-managed', '', NULL, ''
FROM generate_series(1, {instances}) id;
INSERT INTO subscriptions_instancelastsync (instance_id, at) SELECT id, now() - interval '1 hour'
FROM generate_series(1, {instances}) id;
DO $$
DECLARE m date;
BEGIN
  FOR m IN SELECT generate_series(date_trunc('month', now()) - interval '{months} months',
                                  date_trunc('month', now()) - interval '1 month', interval '1 month')::date LOOP
    EXECUTE format('CREATE TABLE IF NOT EXISTS issuer_issuedtoken_bench%s PARTITION OF issuer_issuedtoken '
                   'FOR VALUES FROM (%L) TO (%L)', to_char(m, 'YYYYMM'), m::timestamptz,
                   (m + interval '1 month')::timestamptz);
  END LOOP;
END $$;
INSERT INTO issuer_issuedtoken (jti, kid, scopes, audiences, duo_seat_count, issued_at, expires_at, fingerprint,
    reason, token_encrypted, instance_id)
SELECT gen_random_uuid(), 'k', '["code_suggestions"]', '["gitlab-ai-gateway"]', 50, at, at + interval '3 days', 'f',
       'refresh', NULL, id
FROM generate_series(1, {instances}) id,
     generate_series(date_trunc('month', now()) - interval '{months} months',
                     date_trunc('month', now()) - interval '1 second', interval '1 month' / {per_month}) at;
INSERT INTO issuer_issuedtoken (jti, kid, scopes, audiences, duo_seat_count, issued_at, expires_at, fingerprint,
    reason, token_encrypted, instance_id)
SELECT gen_random_uuid(), 'k', '["code_suggestions"]', '["gitlab-ai-gateway"]', 50, now(), now() + interval '3 days',
       'f', 'sync', decode(md5(id::text), 'hex'), id
FROM generate_series(1, {instances}) id;
VACUUM ANALYZE;
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=13)
    parser.add_argument("--per-month", type=int, default=12)
    parser.add_argument("--seconds", type=int, default=5, help="length of one pgbench turn")
    parser.add_argument("--turns", type=int, default=3, help="turns of each statement, interleaved")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/issuer_inputs_bench")
    base, name = url.rsplit("/", 1)
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.test_settings"}
    admin = f"{base}/postgres"
    subprocess.run(["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=True)
    subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {name}"], check=True)
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    fill = FILL.format(instances=args.instances, months=args.months, per_month=args.per_month)
    filled = subprocess.run(["psql", url, "-qv", "ON_ERROR_STOP=1"], input=fill, capture_output=True, text=True)
    if filled.returncode:
        raise SystemExit(filled.stderr)
    records = subprocess.run(
        ["psql", url, "-Atc", "SELECT count(*) FROM issuer_issuedtoken"], check=True, capture_output=True, text=True
    ).stdout.strip()
    query = subprocess.run(
        [
            PY,
            "-c",
            "import django; django.setup(); from issuer.sync_state.store import _inputs_query; "
            "from issuer.conf import issuer_settings; print(issuer_settings.TOKEN_TTL_SECONDS); print(_inputs_query())",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    lifetime, query = query.split("\n", 1)
    digest = "md5('digest' || :id)"
    since = f"now() - interval '{int(lifetime)} seconds'"  # a stable expression: pruned at execution start, as $1 is
    bounded = query.replace("issued_at > %s", f"issued_at > {since}", 1).replace("%s", digest, 1)
    unbounded = query.replace(" AND issued_at > %s", "", 1).replace("%s", digest, 1)
    assert "%s" not in bounded + unbounded and bounded != unbounded
    results = {"within one lifetime (now)": [], "every partition (before)": []}
    with tempfile.TemporaryDirectory() as folder:
        scripts = {}
        for label, statement in zip(results, (bounded, unbounded), strict=True):
            path = Path(folder) / f"{len(scripts)}.sql"
            path.write_text(f"\\set id random(1, {args.instances})\n{statement};\n")
            scripts[label] = path
        for _ in range(args.turns):
            for label, path in scripts.items():
                out = subprocess.run(
                    ["pgbench", "-n", "-M", "prepared", "-c", "1", "-T", str(args.seconds), "-f", str(path), url],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
                latency = float(re.search(r"latency average = ([\d.]+) ms", out).group(1))
                results[label].append((tps, latency))
    print(
        f"{args.instances} instances, {records} token records ({args.months} past months x {args.per_month} an "
        f"instance, and one valid token each)"
    )
    print(f"{'read':28} {'statements/s (turns)':>34} {'median':>8} {'latency ms':>11}")
    medians = {}
    for label, turns in results.items():
        medians[label] = statistics.median(tps for tps, _ in turns)
        latency = statistics.median(latency for _, latency in turns)
        shown = ", ".join(f"{tps:,.0f}" for tps, _ in turns)
        print(f"{label:28} {shown:>34} {medians[label]:8,.0f} {latency:11.3f}")
    now, before = medians.values()
    print(f"within one lifetime / every partition: {now / before:.2f}x the statements a second")


if __name__ == "__main__":
    main()
