#!/usr/bin/env python
"""Refresh-job benchmark: tokens/s of one worker process against the raw single-core RS256 sign rate, the plan's
cost and peak memory, at 100,000 and 1,000,000 instances on PostgreSQL.

    .venv/bin/python bench/refresh_bench.py [--counts 100000 1000000] [--sample 20000] [--no-remint]

Each count gets a fresh database (issuer_bench_refresh on the local server) filled with SQL; then a child process
(one "worker") measures the raw sign rate with the active key (the baseline, same run), computes the whole plan,
and runs chunks in plan order until `--sample` tokens are minted (every instance needs a first token, so each
chunk mints fully), the raw signing and the chunks interleaved so that a drift in the machine's speed slows both.
It prints tokens/s, RSS before, after the plan and at peak; below the ratio target, a profile of four more chunks.
Then the emergency: the rest of the plan gives every instance its first token, the active key is revoked
(`signing_key_revoke`), and the refresh job (`token_refresh_run`, its chunks run in this one process) re-mints every
instance: the time is measured whole, never extrapolated. Targets: tokens/s >= 0.6 x the raw sign rate, and a peak
memory that does not grow with the count.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# One customer, subscription, add-on purchase and bound instance per instance, with SQL (a million in a minute).
POPULATE = """
SET synchronous_commit = off;
INSERT INTO subscriptions_customer (id, name, contact_email, created_at)
SELECT g, 'bench-' || g, '', now() FROM generate_series(1, :n) g;
INSERT INTO subscriptions_subscription (id, license_type, seats, starts_on, expires_on, trial, activation_code,
    suspended, created_at, updated_at, customer_id, first_activated_at)
SELECT g, 'ultimate', 100, current_date - 10, current_date + 355, false, upper(substr(md5('code' || g), 1, 24)),
       false, now(), now(), g, now()
FROM generate_series(1, :n) g;
INSERT INTO subscriptions_addonpurchase (id, add_on, quantity, started_on, expires_on, trial, purchase_id,
    cancelled_at, created_at, updated_at, subscription_id)
SELECT g, CASE WHEN g % 2 = 0 THEN 'duo_pro' ELSE 'duo_enterprise' END, 10 + g % 90, current_date - 10,
       current_date + 355, false, 'P-' || upper(substr(md5('p' || g), 1, 12)), NULL, now(), now(), g
FROM generate_series(1, :n) g;
INSERT INTO subscriptions_instance (id, instance_identifier, unique_instance_id, hostname, gitlab_version,
    activated_at, license_key_digest, license_key_prefix, suspended, created_at, subscription_id,
    deployment_type, last_error, last_error_at, last_seen_instance_id)
SELECT g, md5('i' || g)::uuid, '', '', '17.11.0', now(), md5('lk' || g) || md5('lk2' || g), '', false, now(), g,
       '', '', NULL, ''
FROM generate_series(1, :n) g;
ANALYZE;
"""

REFRESH = """
import json, resource, sys, time, django
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

def raw_signing(seconds):
    start, signed = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        jwt.encode(claims, private, algorithm="RS256", headers={"kid": key.kid, "typ": "JWT"})
        signed += 1
    return signed, time.perf_counter() - start

raw_signing(1)  # warm-up
sample, remint = int(sys.argv[1]), sys.argv[2] == "remint"
before = rss_mb()
start = time.perf_counter()
plan = token_refresh_plan()
plan_seconds = time.perf_counter() - start
rss_after_plan = rss_mb()
# Baseline and job interleaved (half a second of raw signing, then two chunks, and again), so that a machine
# whose speed drifts during the run slows both sides alike.
signed = raw_seconds = minted = elapsed = 0
chunks = iter(plan)
while minted < sample:
    n, seconds = raw_signing(0.5)
    signed, raw_seconds = signed + n, raw_seconds + seconds
    start = time.perf_counter()
    for first, last in (next(chunks), next(chunks)):
        minted += token_refresh_chunk(first, last)
    elapsed += time.perf_counter() - start
raw_rate = signed / raw_seconds
assert IssuedToken.objects.count() == minted
if minted / elapsed < 0.6 * raw_rate:  # below the target: where the time goes, over four more chunks
    import cProfile, io, pstats
    profiler = cProfile.Profile()
    profiler.enable()
    for first, last in (next(chunks) for _ in range(4)):
        token_refresh_chunk(first, last)
    profiler.disable()
    report = io.StringIO()
    pstats.Stats(profiler, stream=report).sort_stats("tottime").print_stats(15)
    print(report.getvalue())
figures = {"raw_sign_per_s": raw_rate, "minted": minted, "seconds": elapsed, "tokens_per_s": minted / elapsed,
           "chunks": len(plan), "plan_seconds": plan_seconds, "rss_before_mb": before,
           "rss_after_plan_mb": rss_after_plan}
if remint:
    # Every instance gets its first token (the rest of the plan), then the active key is revoked and the job
    # re-mints every one of them, timed whole: what an emergency costs, measured rather than extrapolated. The
    # revoke's receiver would queue the job on Celery; the same job runs here, in this one worker process.
    from issuer import tasks
    from issuer.keys.services import signing_key_revoke
    from issuer.keys.signals import signing_key_revoked
    from issuer.tokens.refresh import token_refresh_run
    from subscriptions.models import Instance

    start = time.perf_counter()
    figures["prefilled"] = sum(token_refresh_chunk(first, last) for first, last in chunks)
    figures["prefill_seconds"] = time.perf_counter() - start
    instances = Instance.objects.count()
    assert IssuedToken.objects.values("instance").distinct().count() == instances
    signing_key_revoked.disconnect(tasks._refresh_after_revoke)
    signing_key_revoke(key.kid, reason="refresh bench: an emergency re-mint")
    remints = []
    start = time.perf_counter()
    token_refresh_run(lambda first, last: remints.append(token_refresh_chunk(first, last)))
    figures["remint_seconds"] = time.perf_counter() - start
    figures["reminted"] = sum(remints)
    assert figures["reminted"] == instances == IssuedToken.objects.filter(reason="refresh_key").count()
figures["rss_peak_mb"] = rss_mb()
print(json.dumps(figures))
"""


def psql(*args: str, database: str = "postgres", stdin: str | None = None) -> None:
    connect = ["-h", "127.0.0.1", "-U", "postgres", "-d", database]
    subprocess.run(
        ["psql", "-q", "-o", "/dev/null", "-v", "ON_ERROR_STOP=1", *connect, *args], check=True, input=stdin, text=True
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--sample", type=int, default=20_000, help="tokens minted per count (chunks in plan order)")
    parser.add_argument("--no-remint", action="store_true", help="skip the pre-fill, revoke and re-mint phase")
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
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"refresh bench, {started}, commit {commit.stdout.strip() or 'unknown'}", flush=True)
    rows, profiles = [], []
    for count in args.counts:
        psql("-c", "DROP DATABASE IF EXISTS issuer_bench_refresh WITH (FORCE)")
        psql("-c", "CREATE DATABASE issuer_bench_refresh")
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
        subprocess.run(
            [sys.executable, "manage.py", "signing_keys", "ensure"], cwd=ROOT, env=env, check=True, capture_output=True
        )
        psql("-v", f"n={count}", database="issuer_bench_refresh", stdin=POPULATE)
        refresh = [sys.executable, "-c", REFRESH, str(args.sample), "skip" if args.no_remint else "remint"]
        out = subprocess.run(refresh, cwd=ROOT, env=env, capture_output=True, text=True)
        if out.returncode:
            sys.exit(out.stderr[-3000:])
        *profile, figures = out.stdout.strip().splitlines()
        rows.append((count, json.loads(figures)))
        if profile:
            profiles.append((count, "\n".join(profile)))
    print(
        "| instances | plan (chunks, s) | raw sign/s | refresh tokens/s | ratio (target 0.6) |"
        " RSS before → after plan → peak |"
    )
    print("|---:|---:|---:|---:|---|---:|")
    for count, r in rows:
        ratio = r["tokens_per_s"] / r["raw_sign_per_s"]
        print(
            f"| {count:,} | {r['chunks']:,}, {r['plan_seconds']:.2f} s | {r['raw_sign_per_s']:.0f} | "
            f"{r['tokens_per_s']:.0f} (of {r['minted']:,}) | {ratio:.3f} {'met' if ratio >= 0.6 else 'NOT met'} | "
            f"{r['rss_before_mb']:.0f} → {r['rss_after_plan_mb']:.0f} → {r['rss_peak_mb']:.0f} MB |"
        )
    if not args.no_remint:
        print(
            "\n| instances | first tokens for the rest of the fleet | revoke → every instance re-minted "
            "(1 worker process) | re-mint tokens/s (÷ raw sign/s) |"
        )
        print("|---:|---:|---:|---:|")
        for count, r in rows:
            rate = r["reminted"] / r["remint_seconds"]
            print(
                f"| {count:,} | {r['prefilled']:,} in {r['prefill_seconds']:.0f} s | {r['reminted']:,} in "
                f"{r['remint_seconds']:.0f} s ({r['remint_seconds'] / 60:.1f} min) | "
                f"{rate:.0f} ({rate / r['raw_sign_per_s']:.3f}) |"
            )
    print("targets: ratio >= 0.6 (one worker process vs one core signing); peak RSS flat across counts")
    for count, profile in profiles:
        print(f"\n{count:,} instances: below the ratio target; cProfile of four more chunks, by own time:\n{profile}")


if __name__ == "__main__":
    main()
