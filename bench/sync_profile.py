#!/usr/bin/env python
"""Where a token sync's time goes: the stages of `POST /graphql` timed in-process (Django's test client, the same
database and Redis as the HTTP benchmark), for a warm sync (stored token), a cold one (signs and records) or a
fleet sync (a stored token, the sync state not cached: each key synced once, as an hourly instance does).

    .venv/bin/python -m bench.sync_profile KEYS_JSON --mode warm|cold|fleet [--requests 2000] [--verify-cost]

`bench/http_bench.py` runs it for each sync target it finds not met, with its own environment (for cold: a refresh
threshold no stored token meets). Each stage is timed by wrapping the function that does it; nested stages are
listed under their parent, and "the rest" is the request's time outside every listed stage (middleware, Django's
test client, GraphQL's own execution around the resolver).

`--verify-cost` (warm): what verifying the cached sync state costs (issue 23). The same warm syncs are run again,
in turns of 200, reading the cached state verified (HMAC, cache key, generation, expiry: the production path) and
the same read without verification (the payload decoded as it is); both are timed as the stage "per-key count +
cached state", and every read's own open is timed apart (signed_value_open against decoding alone).
"""

import argparse
import json
import time
from collections import defaultdict

import django

SYNC = (
    "query cloudConnectorAccess($licenseKey: String!, $gitlabVersion: String!) { cloudConnectorAccess("
    "licenseKey: $licenseKey, gitlabVersion: $gitlabVersion) { serviceToken { token expiresAt } "
    "availableServices { name serviceStartTime bundledWith } catalog } }"
)


FLEET_WARM_UP = 50


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("keys")
    parser.add_argument("--mode", choices=["warm", "cold", "fleet"], required=True)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--verify-cost", action="store_true", help="verified vs unverified cached-state reads")
    args = parser.parse_args()
    django.setup()
    import redis
    from django.conf import settings
    from django.test import Client

    import config.limits
    import issuer.api.graphql
    import issuer.sync_state.store
    import issuer.tokens.services

    spent = defaultdict(float)

    def timed(module, name, label):
        owner, _, name = name.rpartition(".")
        owner = getattr(module, owner) if owner else module
        function = getattr(owner, name)

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - start

        setattr(owner, name, wrapper)

    # (module, function, label, depth): depth 1 stages add up to the request; deeper ones lie inside the one above.
    stages = [
        (config.limits, "RateCount.count_alone", "a rate-limit count alone (a Redis round trip)", 1),
        (issuer.api.graphql, "document_cached", "GraphQL: the parsed, validated document (cache)", 1),
        (issuer.api.graphql, "execute", "GraphQL: execution (graphql-core)", 1),
        (issuer.api.graphql, "sync_state_counted", "address + key counts + cached state (one Redis round trip)", 2),
        (issuer.sync_state.store, "_inputs_read", "inputs read: instance, purchases, newest token (PostgreSQL)", 3),
        (issuer.api.graphql, "service_access_token_sync", "sync service", 2),
        (issuer.tokens.services, "instance_sync_observed", "what the sync saw, recorded (PostgreSQL)", 3),
        (issuer.tokens.services, "_stored_token", "decrypt the stored token (Fernet)", 3),
        (issuer.tokens.services, "instance_entitlements", "entitlements and fingerprint", 3),
        (issuer.tokens.services, "service_access_token_sign", "sign (RS256) and encrypt", 3),
        (issuer.tokens.services, "_token_record_insert", "record insert (PostgreSQL round trip)", 3),
        (issuer.tokens.services, "sync_state_settle", "cached state stored, once (Redis)", 3),
        (issuer.api.graphql, "_json", "response encoded (orjson, ~22 kB)", 1),
    ]
    for module, name, label, _depth in stages:
        timed(module, name, label)
    with open(args.keys) as file:
        keys = json.load(file)
    bodies = [json.dumps({"query": SYNC, "variables": {"licenseKey": k, "gitlabVersion": "17.11.0"}}) for k in keys]
    client = Client()

    def run(count, first=0):
        for index in range(first, first + count):
            response = client.post("/graphql", bodies[index % len(bodies)], content_type="application/json")
            assert response.status_code == 200 and b'"errors"' not in response.content, response.content[:200]

    if args.mode == "fleet":  # each key synced once, its state never cached before; a few to warm the process up
        warm_up = FLEET_WARM_UP
        run(warm_up)
        args.requests = min(args.requests, len(bodies) - warm_up)
    else:
        warm_up = 0
        run(len(bodies) * 2)  # every instance holds a stored token, every document is parsed and cached
    spent.clear()
    start = time.perf_counter()
    run(args.requests, warm_up)
    total = (time.perf_counter() - start) / args.requests * 1000
    bare_start = time.perf_counter()
    for _ in range(args.requests):
        client.get("/bench/json")
    bare = (time.perf_counter() - bare_start) / args.requests * 1000
    ping = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    ping.ping()
    ping_start = time.perf_counter()
    for _ in range(1000):
        ping.ping()
    round_trip = (time.perf_counter() - ping_start) / 1000 * 1000
    print(f"{args.mode} sync, in-process: {total:.3f} ms a request (bare JSON view: {bare:.3f} ms; a Redis PING from")
    print(f"redis-py: {round_trip:.3f} ms)")
    print("| stage | ms | share |\n|---|---:|---:|")
    top = 0.0
    for _, _, label, depth in stages:
        if label not in spent:
            continue
        ms = spent[label] / args.requests * 1000
        top += ms if depth == 1 else 0
        indent = "" if depth == 1 else "  " * (depth - 1) + "↳ "
        print(f"| {indent}{label} | {ms:.3f} | {ms / total:.0%} |")
    rest = total - top
    print(f"| the rest (middleware, test client, the view around GraphQL) | {rest:.3f} | {rest / total:.0%} |")
    if args.verify_cost and args.mode == "warm":
        verify_cost(run, spent, args.requests)


def verify_cost(run, spent, requests: int) -> None:
    """Warm syncs in turns, reading the cached state verified and not (see the module's doc)."""
    import orjson

    import issuer.sync_state.store
    from config.signed_cache import HEADER_SIZE

    verified_open = issuer.sync_state.store.signed_value_open
    opened = defaultdict(float)
    opened_cpu = defaultdict(float)  # this thread's CPU time: a preemption on a busy machine does not count

    def timed_open(label, function):
        def wrapper(key, blob, **kwargs):
            start, start_cpu = time.perf_counter(), time.thread_time()
            try:
                return function(key, blob, **kwargs)
            finally:
                opened[label] += time.perf_counter() - start
                opened_cpu[label] += time.thread_time() - start_cpu

        return wrapper

    def unverified(key, blob, **kwargs):  # the same read, trusting what Redis holds
        return orjson.loads(blob[HEADER_SIZE:])

    modes = {"verified": timed_open("verified", verified_open), "unverified": timed_open("unverified", unverified)}
    stage = "address + key counts + cached state (one Redis round trip)"
    totals = defaultdict(float)
    done = defaultdict(int)
    turn = 200
    try:
        while min(done.values(), default=0) < requests:
            for mode, function in modes.items():
                issuer.sync_state.store.signed_value_open = function
                spent.clear()
                run(turn)
                totals[mode] += spent[stage]
                done[mode] += turn
    finally:
        issuer.sync_state.store.signed_value_open = verified_open
    print(f"\nverifying the cached state, {done['verified']} warm syncs each, in turns of {turn}:")
    print("| read | cached-state stage, µs a sync | the open alone, µs a sync | the open alone, CPU µs |")
    print("|---|---:|---:|---:|")
    for mode in modes:
        stage_us, open_us = totals[mode] / done[mode] * 1e6, opened[mode] / done[mode] * 1e6
        print(f"| {mode} | {stage_us:.1f} | {open_us:.1f} | {opened_cpu[mode] / done[mode] * 1e6:.1f} |")
    stage_difference = (totals["verified"] / done["verified"] - totals["unverified"] / done["unverified"]) * 1e6
    open_difference = (opened["verified"] - opened["unverified"]) / done["verified"] * 1e6
    cpu_difference = (opened_cpu["verified"] - opened_cpu["unverified"]) / done["verified"] * 1e6
    print(
        f"difference: {stage_difference:.1f} µs a sync (stage), {open_difference:.1f} µs (the open alone), "
        f"{cpu_difference:.1f} µs of CPU (the open alone)"
    )


if __name__ == "__main__":
    main()
