#!/usr/bin/env python
"""HTTP benchmark: warm sync, cold sync and JWKS against two baselines, on PostgreSQL with gunicorn (2 workers).

    .venv/bin/python bench/http_bench.py [--duration 12] [--rounds 3] [--connections 8] [--instances 200]

Uses DATABASE_URL (default postgres://postgres@127.0.0.1:5432/issuer_bench, recreated) and REDIS_URL (default
redis://127.0.0.1:6379/9). Load comes from `wrk` (Debian package; installed if missing). Prints requests/s,
p50 and p99 for each scenario and the ratios against the baselines measured in the same run, each baseline and
what is compared with it taking turns (`--rounds`):
warm sync / bare JSON (target >= 0.55), cold sync / bare sign (>= 0.4), JWKS / bare JSON (>= 0.8). For
information it also loads a bare view that answers as many bytes as a sync (the catalog is ~22 kB).
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if not found:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)
        found = shutil.which("wrk")
    return found


def prepare(env: dict, instances: int) -> list[str]:
    """Fresh database, one active key, `instances` activated Duo Enterprise instances; returns license keys."""
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    script = f"""
import django, json, uuid
django.setup()
from issuer.keys.services import signing_key_ensure_active
from subscriptions.services import instance_activate
from tests.factories import AddOnPurchaseFactory
signing_key_ensure_active()
keys = []
for _ in range({instances}):
    subscription = AddOnPurchaseFactory(add_on="duo_enterprise", quantity=50).subscription
    keys.append(instance_activate(activation_code=subscription.activation_code,
                                  instance_identifier=str(uuid.uuid4()), gitlab_version="17.11.0").license_key)
print(json.dumps(keys))
"""
    out = subprocess.run([PY, "-c", script], cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


SYNC = (
    "query cloudConnectorAccess($licenseKey: String!, $gitlabVersion: String!) { cloudConnectorAccess("
    "licenseKey: $licenseKey, gitlabVersion: $gitlabVersion) { serviceToken { token expiresAt } "
    "availableServices { name serviceStartTime bundledWith } catalog } }"
)


def lua_for_sync(keys: list[str], folder: Path) -> Path:
    bodies = [json.dumps({"query": SYNC, "variables": {"licenseKey": k, "gitlabVersion": "17.11.0"}}) for k in keys]
    lines = ",\n".join("[==[" + body + "]==]" for body in bodies)
    script = folder / "sync.lua"
    script.write_text(
        "bodies = {\n" + lines + "\n}\ncounter = 0\n"
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        "request = function()\n  counter = counter + 1\n"
        "  return wrk.format(nil, nil, nil, bodies[(counter % #bodies) + 1])\nend\n" + GRAPHQL_ERRORS_LUA
    )
    return script


# A GraphQL answer with `errors` comes with HTTP 200: count those as failures too (each wrk thread counts its own,
# `done` adds them up and prints the line `wrk()` reads).
GRAPHQL_ERRORS_LUA = """
threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) graphql_errors = 0 end
function response(status, headers, body)
  if body and string.find(body, '"errors"', 1, true) then graphql_errors = graphql_errors + 1 end
end
function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("graphql_errors") end
  io.write("GraphQL errors: " .. total .. "\\n")
end
"""


def serve(env: dict, port: int, workers: int = 2) -> subprocess.Popen:
    server = subprocess.Popen(
        [
            PY,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("gunicorn did not start")


def wrk(binary: str, url: str, duration: int, connections: int, script: Path | None = None) -> dict:
    args = [binary, "-t", "2", "-c", str(connections), "-d", f"{duration}s", "--latency", url]
    if script:
        args[1:1] = ["-s", str(script)]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    graphql_errors = re.search(r"GraphQL errors: (\d+)", out)

    def latency(pct):
        value, unit = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    failed = (int(errors.group(1)) if errors else 0) + (int(graphql_errors.group(1)) if graphql_errors else 0)
    return {"rps": rps, "p50_ms": latency(50), "p99_ms": latency(99), "non_2xx": failed}


def alternating(results: dict, rounds: int, scenarios: dict, duration: int) -> None:
    """Each scenario for `duration` seconds in all, in `rounds` turns taken one after the other (a baseline, then
    what is compared with it, and again), so that a drift in the machine's speed touches every scenario alike.
    Requests/s are over all turns; latencies are of the median turn."""
    turns = {name: [] for name in scenarios}
    seconds = max(duration // rounds, 1)
    for _ in range(rounds):
        for name, run in scenarios.items():
            turns[name].append(run(seconds))
    for name, figures in turns.items():
        middle = sorted(figures, key=lambda figure: figure["rps"])[len(figures) // 2]
        results[name] = {
            "rps": sum(figure["rps"] for figure in figures) / len(figures),
            "p50_ms": middle["p50_ms"],
            "p99_ms": middle["p99_ms"],
            "non_2xx": sum(figure["non_2xx"] for figure in figures),
        }


def bench_environment(database: str, **overrides: str) -> dict:
    """The server's environment: fresh secrets, the bench settings, PostgreSQL and Redis, rate limits counted as in
    production but high enough that the load from one address is never refused."""
    from cryptography.fernet import Fernet

    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": database,
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9"),
        "SECRET_KEY": "bench-" + uuid.uuid4().hex,
        "KEY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "LICENSE_KEY_PEPPER": uuid.uuid4().hex,
        "ISSUER_URL": "http://127.0.0.1",
        "DEBUG": "0",
        "INSTANCE_RATE_PER_ADDRESS": "10000000/m",
        "INSTANCE_RATE_PER_LICENSE_KEY": "10000000/m",
        **overrides,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=12, help="seconds of load per scenario, over all turns")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="turns each scenario's duration is split into")
    args = parser.parse_args()
    binary = ensure_wrk()
    database = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/issuer_bench")
    name = database.rsplit("/", 1)[1]
    subprocess.run(
        ["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-c", f"DROP DATABASE IF EXISTS {name}"], check=True
    )
    subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-c", f"CREATE DATABASE {name}"], check=True)
    env = bench_environment(database)
    keys = prepare(env, args.instances)
    results = {}
    rounds = max(args.rounds, 1)
    with tempfile.TemporaryDirectory() as folder:
        script = lua_for_sync(keys, Path(folder))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = serve(env, port)
        try:
            wrk(binary, f"{base}/bench/json", 2, args.connections)  # warm up both workers
            wrk(binary, f"{base}/graphql", 3, args.connections, script)  # pre-mint every instance's token
            alternating(
                results,
                rounds,
                {
                    "bare JSON view": lambda seconds: wrk(binary, f"{base}/bench/json", seconds, args.connections),
                    "warm sync (stored token)": lambda seconds: wrk(
                        binary, f"{base}/graphql", seconds, args.connections, script
                    ),
                    "bare JSON, sync-sized": lambda seconds: wrk(
                        binary, f"{base}/bench/json-large", seconds, args.connections
                    ),
                    "JWKS": lambda seconds: wrk(binary, f"{base}/oauth/discovery/keys", seconds, args.connections),
                },
                args.duration,
            )
        finally:
            server.terminate()
            server.wait()
        cold_env = {**env, "ISSUER_REFRESH_THRESHOLD_SECONDS": str(10**9)}  # no stored token is ever fresh
        server = serve(cold_env, port)
        try:
            wrk(binary, f"{base}/graphql", 2, args.connections, script)
            alternating(
                results,
                rounds,
                {
                    "bare sign view": lambda seconds: wrk(binary, f"{base}/bench/sign", seconds, args.connections),
                    "cold sync (signs)": lambda seconds: wrk(
                        binary, f"{base}/graphql", seconds, args.connections, script
                    ),
                },
                args.duration,
            )
        finally:
            server.terminate()
            server.wait()
    print(f"{'scenario':28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'failed':>8}")
    for scenario, figures in results.items():
        rps, p50, p99, non_2xx = figures["rps"], figures["p50_ms"], figures["p99_ms"], figures["non_2xx"]
        print(f"{scenario:28} {rps:9.0f} {p50:8.2f} {p99:8.2f} {non_2xx:8}")
    ratios = [
        ("warm sync / bare JSON", results["warm sync (stored token)"]["rps"] / results["bare JSON view"]["rps"], 0.55),
        ("cold sync / bare sign", results["cold sync (signs)"]["rps"] / results["bare sign view"]["rps"], 0.4),
        ("JWKS / bare JSON", results["JWKS"]["rps"] / results["bare JSON view"]["rps"], 0.8),
    ]
    failures = {scenario: figures["non_2xx"] for scenario, figures in results.items() if figures["non_2xx"]}
    if failures:
        raise SystemExit(f"failed requests (HTTP errors, or GraphQL answers with errors), so no ratio: {failures}")
    for label, ratio, target in ratios:
        print(f"{label:28} {ratio:9.2f}  target >= {target}  {'met' if ratio >= target else 'NOT met'}")
    same_size = results["warm sync (stored token)"]["rps"] / results["bare JSON, sync-sized"]["rps"]
    print(f"{'warm sync / sync-sized JSON':28} {same_size:9.2f}  (information: the same ~22 kB answer without logic)")
    for (label, ratio, target), mode, overrides in zip(
        ratios[:2], ("warm", "cold"), ({}, {"ISSUER_REFRESH_THRESHOLD_SECONDS": str(10**9)}), strict=True
    ):
        if ratio < target:
            print(f"\n{label} is below its target; where the time goes:")
            profile(env | overrides, keys, mode)


def profile(env: dict, keys: list[str], mode: str) -> None:
    """`bench/sync_profile.py` against this run's database: each stage of a sync, timed in-process."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
        json.dump(keys, file)
        file.flush()
        command = [PY, "-m", "bench.sync_profile", file.name, "--mode", mode, "--requests", "1000"]
        out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    print(out.stdout if out.returncode == 0 else out.stderr[-3000:], end="")


if __name__ == "__main__":
    main()
