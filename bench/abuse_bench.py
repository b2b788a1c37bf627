#!/usr/bin/env python
"""Abuse benchmark: what hostile requests cost a gunicorn worker, next to a normal warm sync measured in the same run.

    .venv/bin/python bench/abuse_bench.py [--samples 200] [--invalid 1000]

Uses DATABASE_URL (default postgres://postgres@127.0.0.1:5432/issuer_bench_abuse, recreated) and REDIS_URL
(default redis://127.0.0.1:6379/9); one gunicorn worker, requests sent one at a time from this process. Prints:

- the p50 of a normal warm sync (GraphQL, stored token);
- the p50 and worst latency of each over-limit request (oversized body, 5,000 aliases, too many tokens, aliases
  inside the limit, deep nesting, a flood of unknown fields, an activation over its rate limit), and the worst of
  them against the target: within 5x the warm sync's p50;
- the worker's RSS before and after `--invalid` distinct invalid 100 kB queries (target: grows less than 20 MB).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http_bench import SYNC, bench_environment, free_port, prepare, serve  # noqa: E402


def post(url: str, body: bytes) -> tuple[int, float]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        error.read()
        status = error.code
    return status, (time.perf_counter() - started) * 1000


def graphql(query: str, variables: dict | None = None) -> bytes:
    return json.dumps({"query": query, "variables": variables or {}}).encode()


def worker_rss_mb(server: subprocess.Popen) -> float:
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    status = Path(f"/proc/{children[0]}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]) / 1024


def hostile_requests(key: str) -> dict[str, bytes]:
    aliases = " ".join(
        f"a{n}: cloudConnectorAccess(licenseKey: $k, gitlabVersion: $v) {{ catalog }}" for n in range(5000)
    )
    activation = (
        'mutation { cloudActivationActivate(input: {gitlabVersion: "19.1.0", activationCode: "GUESS", automated: true, '
        'instanceIdentifier: "00000000-0000-0000-0000-000000000000", hostname: "h"}) { licenseKey errors } }'
    )
    return {
        "500 kB body": graphql("{ __typename }" + " " * 500_000),
        "5,000 aliases (419 kB)": graphql(f"query($k: String!, $v: String!) {{ {aliases} }}", {"k": "x", "v": "1"}),
        "too many tokens (8 kB)": graphql("{ " + "a " * 4000 + "}"),
        "catalog aliases, valid key": graphql(
            "query($k: String!, $v: String!) { cloudConnectorAccess(licenseKey: $k, gitlabVersion: $v) { "
            + " ".join(f"c{n}: catalog" for n in range(300))
            + " } }",
            {"k": key, "v": "17.11.0"},
        ),
        "deep nesting": graphql("{ " + "cloudConnectorAccess { " * 400 + "x" + " }" * 401),
        "1,000 unknown fields": graphql("{ " + " ".join(f"f{n}" for n in range(1000)) + " }"),
        "activation over its limit": graphql(activation),
    }


# What each hostile request must be answered with: a request meant to be refused that were accepted would otherwise
# be timed as if it had been refused.
EXPECTED = {
    "500 kB body": 413,
    "5,000 aliases (419 kB)": 413,
    "too many tokens (8 kB)": 400,
    "catalog aliases, valid key": 400,
    "deep nesting": 413,
    "1,000 unknown fields": 400,
    "activation over its limit": 429,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--invalid", type=int, default=1000)
    args = parser.parse_args()
    database = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/issuer_bench_abuse")
    name = database.rsplit("/", 1)[1]
    for statement in (f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}"):
        subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-c", statement], check=True)
    env = bench_environment(database, ACTIVATION_RATE_PER_ADDRESS="1/h")
    subprocess.run(["redis-cli", "-n", env["REDIS_URL"].rsplit("/", 1)[1], "FLUSHDB"], check=True, capture_output=True)
    key = prepare(env, 1)[0]
    port = free_port()
    server = serve(env, port, workers=1)
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        sync = graphql(SYNC, {"licenseKey": key, "gitlabVersion": "17.11.0"})
        for _ in range(20):
            post(url, sync)  # mints, caches, warms the worker
        warm = statistics.median(post(url, sync)[1] for _ in range(args.samples))
        post(url, hostile_requests(key)["activation over its limit"])  # spends the one allowed attempt
        rows = []
        for label, body in hostile_requests(key).items():
            timings = [post(url, body) for _ in range(max(args.samples // 10, 5))]
            statuses = sorted({status for status, _ in timings})
            rows.append((label, statuses, statistics.median(t for _, t in timings), max(t for _, t in timings)))
        rss_before = worker_rss_mb(server)
        for number in range(args.invalid):
            filler = f"# {number} " + "x" * 100_000
            post(url, graphql(f"{{ invalid{number} }}\n{filler}"))
        rss_after = worker_rss_mb(server)
    finally:
        server.terminate()
        server.wait()
    print(f"{'request':30} {'status':>10} {'expected':>9} {'p50 ms':>8} {'worst ms':>9}")
    print(f"{'warm sync (baseline)':30} {'200':>10} {'200':>9} {warm:8.2f}")
    wrong = []
    for label, statuses, p50, worst in rows:
        expected = EXPECTED[label]
        if statuses != [expected]:
            wrong.append(label)
        flag = "" if statuses == [expected] else "  WRONG STATUS"
        print(f"{label:30} {','.join(map(str, statuses)):>10} {expected:>9} {p50:8.2f} {worst:9.2f}{flag}")
    if wrong:
        raise SystemExit(f"answered otherwise than expected, so not timed as refusals: {', '.join(wrong)}")
    worst_p50 = max(p50 for _, _, p50, _ in rows)
    ratio = worst_p50 / warm
    print(f"worst over-limit p50 / warm sync p50: {ratio:.2f}  target <= 5  {'met' if ratio <= 5 else 'NOT met'}")
    growth = rss_after - rss_before
    print(
        f"worker RSS after {args.invalid} distinct invalid 100 kB queries: {rss_before:.0f} -> {rss_after:.0f} MB "
        f"(+{growth:.1f} MB)  target < 20 MB  {'met' if growth < 20 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
