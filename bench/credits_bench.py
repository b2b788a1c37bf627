#!/usr/bin/env python
"""Credits collector benchmark (issue 24), on PostgreSQL with one gunicorn worker:

    .venv/bin/python bench/credits_bench.py [--events 30000] [--batch 100] [--emitters 4] [--rounds 3]

1. Ingestion: billable_usage events posted in Snowplow batches of `--batch`, each event new, by `--emitters`
   concurrent HTTP clients; events stored in the ledger per second (target >= 5,000), side by side with a bare view
   that receives the same batches and COPYs them without validation (bench/urls.py), taking turns (`--rounds`).
2. Replay: `--emitters` concurrent emitters each send the same 10,000 events twice; the ledger must hold exactly
   10,000 entries and the same statement as a sequential run of the same events.
3. The quota check (`HEAD /api/v1/consumers/resolve` with the gateway's credential, answered from the cached
   balance) against the bare JSON view, with `wrk` (target >= 0.7x once the machine door is lean).

Uses DATABASE_URL (default postgres://postgres@127.0.0.1:5432/issuer_credits_bench, recreated) and REDIS_URL.
"""

import argparse
import base64
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.http_bench import PY, ROOT, bench_environment, free_port, serve  # noqa: E402

TP2 = "/com.snowplowanalytics.snowplow/tp2"
BILLABLE = "iglu:com.gitlab/billable_usage/jsonschema/1-0-3"


def prepare(env: dict, instances: int) -> list[str]:
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    script = f"""
import django, json, uuid
django.setup()
from issuer.keys.services import signing_key_ensure_active
from subscriptions.services import instance_activate
from tests.factories import AddOnPurchaseFactory, SubscriptionFactory
signing_key_ensure_active()
from django.contrib.auth.models import User
from knox.models import AuthToken
from tests.helpers import role
gateway = User.objects.create_user("aigw", email="aigw@example.test", password="bench-aigw-pw-123")
gateway.groups.add(role("quota service"))
token = AuthToken.objects.create(gateway)[1]
ids = []
for _ in range({instances}):
    subscription = SubscriptionFactory(license_type="ultimate", seats=100000)
    AddOnPurchaseFactory(subscription=subscription, add_on="duo_enterprise", quantity=100000)
    ids.append(str(instance_activate(activation_code=subscription.activation_code, gitlab_version="18.11.0",
                                     instance_identifier=str(uuid.uuid4())).instance.instance_identifier))
print(json.dumps({{"ids": ids, "token": token}}))
"""
    out = subprocess.run([PY, "-c", script], cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def quota_vs_bare(base: str, instance_id: str, token: str, rounds: int, seconds: int = 4) -> tuple[float, float]:
    """Requests/s of the quota check and of the bare JSON view, taking turns (wrk, 2 threads, 8 connections)."""
    from bench.http_bench import ensure_wrk, wrk

    binary = ensure_wrk()
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "quota.lua"
        script.write_text(
            'wrk.method = "HEAD"\n'
            'wrk.headers["X-Admin-Email"] = "aigw@example.test"\n'
            f'wrk.headers["X-Admin-Token"] = "{token}"\n'
        )
        query = f"/api/v1/consumers/resolve?instance_id={instance_id}&user_id=7&event_type=code_completions&realm=SM"
        quota, bare = [], []
        for _ in range(rounds):
            bare.append(wrk(binary, f"{base}/bench/json", seconds, 8)["rps"])
            result = wrk(binary, base + query, seconds, 8, script)
            assert result["non_2xx"] == 0, result
            quota.append(result["rps"])
    return sum(quota) / len(quota), sum(bare) / len(bare)


def event(instance_id: str, number: int) -> dict:
    data = {
        "event_id": str(uuid.uuid4()),
        "event_type": "code_completions" if number % 3 else "duo_agent_platform_workflow_completion",
        "unit_of_measure": "request",
        "quantity": 1,
        "realm": "SM",
        "timestamp": dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(),
        "instance_id": instance_id,
        "global_user_id": f"user-{number % 500}",
        "metadata": {"feature_qualified_name": "code_suggestions"},
    }
    contexts = {
        "schema": "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1",
        "data": [{"schema": BILLABLE, "data": data}],
    }
    return {
        "e": "se",
        "se_ca": "CodeCompletions",
        "se_ac": data["event_type"],
        "eid": str(uuid.uuid4()),
        "cx": base64.urlsafe_b64encode(json.dumps(contexts).encode()).decode(),
        "tv": "py-1.1.0",
        "p": "pc",
    }


def batches(instances: list[str], events: int, size: int) -> list[bytes]:
    rows = [event(instances[number % len(instances)], number) for number in range(events)]
    return [
        json.dumps(
            {
                "schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
                "data": rows[start : start + size],
            }
        ).encode()
        for start in range(0, len(rows), size)
    ]


def fire(url: str, bodies: list[bytes], emitters: int) -> tuple[float, int, list[int]]:
    """Posts every body once, spread over `emitters` threads; returns (seconds, events stored, bad statuses)."""
    stored, bad, lock = [0], [], threading.Lock()
    shares = [bodies[index::emitters] for index in range(emitters)]

    def emit(share):
        with requests.Session() as session:
            for body in share:
                answer = session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=60)
                with lock:
                    if answer.status_code != 200:
                        bad.append(answer.status_code)
                    else:
                        stored[0] += answer.json()["stored"]

    threads = [threading.Thread(target=emit, args=(share,)) for share in shares]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start, stored[0], bad


def ledger(env: dict) -> dict:
    script = """
import django, json
django.setup()
from django.db.models import Sum
from credits.models import UsageEvent
print(json.dumps({"entries": UsageEvent.objects.count(),
                  "credits": str(UsageEvent.objects.aggregate(total=Sum("credits"))["total"])}))
"""
    out = subprocess.run([PY, "-c", script], cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=30000, help="new events per ingestion turn, over all rounds")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--emitters", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--instances", type=int, default=50)
    args = parser.parse_args()
    database = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/issuer_credits_bench")
    name = database.rsplit("/", 1)[1]
    for sql in (f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}"):
        subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-c", sql], check=True)
    env = bench_environment(database)
    prepared = prepare(env, args.instances)
    instances = prepared["ids"]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = serve(env, port, workers=1)
    try:
        per_turn = max(args.events // args.rounds, args.batch)
        figures = {"collector": [], "bare COPY view": []}
        fire(base + TP2, batches(instances, 500, args.batch), args.emitters)  # warm up
        for _ in range(args.rounds):
            for label, path in (("bare COPY view", "/bench/copy"), ("collector", TP2)):
                bodies = batches(instances, per_turn, args.batch)
                seconds, stored, bad = fire(base + path, bodies, args.emitters)
                assert not bad and stored == per_turn, (label, stored, bad)
                figures[label].append(per_turn / seconds)
        collector = sum(figures["collector"]) / len(figures["collector"])
        bare = sum(figures["bare COPY view"]) / len(figures["bare COPY view"])
        print(f"ingestion, batches of {args.batch}, {args.emitters} emitters, one gunicorn worker, PostgreSQL:")
        print(
            f"  collector (parse, check, dedupe, price, store): {collector:8.0f} events/s (target >= 5,000)"
            f"  {'met' if collector >= 5000 else 'NOT met'}"
        )
        print(f"  bare view (COPY the raw events):                 {bare:8.0f} events/s")
        print(f"  ratio collector / bare:                           {collector / bare:8.2f}")
        before = ledger(env)
        replay = batches(instances, 10000, args.batch)
        seconds, stored, bad = fire(base + TP2, replay, 1)  # a sequential run first
        sequential = ledger(env)
        errors = []
        threads = [
            threading.Thread(target=lambda: errors.extend(fire(base + TP2, replay * 2, 1)[2]))
            for _ in range(args.emitters)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        after = ledger(env)
        new_entries = sequential["entries"] - before["entries"]
        print(
            f"replay: 10,000 events sent once in sequence, then twice more by each of {args.emitters} concurrent"
            f" emitters: {new_entries} entries after the sequential run, {after['entries'] - before['entries']}"
            f" after the replays; credits {sequential['credits']} and {after['credits']};"
            f" non-2xx answers: {len(errors)}"
        )
        ok = after == sequential and new_entries == 10000 and not errors
        print(f"  exactly once: {'yes' if ok else 'NO'}")
        quota, bare_json = quota_vs_bare(base, instances[0], prepared["token"], args.rounds)
        print("quota check, HEAD /api/v1/consumers/resolve with the gateway's credential, one worker:")
        print(
            f"  quota check: {quota:8.0f} requests/s; bare JSON view: {bare_json:8.0f} requests/s;"
            f" ratio {quota / bare_json:.2f} (target >= 0.7{'' if quota / bare_json >= 0.7 else ': NOT met'})"
        )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
