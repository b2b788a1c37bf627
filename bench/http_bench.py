#!/usr/bin/env python
"""HTTP benchmark: warm sync, cold sync, fleet sync and JWKS against two baselines, on PostgreSQL with gunicorn
(2 gthread workers of 4 threads, as config/gunicorn.conf.py serves).

    .venv/bin/python bench/http_bench.py [--duration 12] [--rounds 3] [--connections 8] [--instances 200]
                                         [--fleet 100000] [--only warm cold jwks fleet]

Uses DATABASE_URL (default postgres://postgres@127.0.0.1:5432/issuer_bench, recreated) and REDIS_URL (default
redis://127.0.0.1:6379/9). Load comes from `wrk` (Debian package; installed if missing). Prints requests/s,
p50 and p99 for each scenario; the machine's CPU a request cost, by process (gunicorn, PostgreSQL, Redis, wrk):
where the time goes under load, which an in-process profile cannot see; and the ratios against the baselines
measured in the same run, each baseline and what is compared with it taking turns (`--rounds`): warm sync / bare
JSON (target >= 0.6), cold sync / bare sign (>= 0.5), JWKS / bare JSON (>= 1.0), fleet sync / bare JSON (>= 0.3).
For information it also loads a bare view that answers as many bytes as a sync (the catalog is ~22 kB).
A turn whose load the kernel gave mostly to one gunicorn worker (one core busy, the other idle) is run again: the
table's `re-run` column counts them (BALANCED_SHARE).

The warm sync cycles `--instances` instances, so their sync state is always cached. The fleet sync is the sync a
million hourly instances make: `--fleet` instances filled in SQL, each with a token the refresh job pre-minted, and
each turn syncs a disjoint slice of them, so every sync finds its state uncached (reads PostgreSQL, writes its
bookkeeping and stores the state). Its profile (`bench/sync_profile.py --mode fleet`) is always printed.
"""

import argparse
import json
import math
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


# The fleet: one customer, subscription, Duo Enterprise purchase and bound instance per instance, in SQL (ids from
# FLEET_FIRST_ID on, after the factories' rows); the digests are computed here from license keys made here.
FLEET_FIRST_ID = 1_000_000
FLEET_FILL = """
SET synchronous_commit = off;
INSERT INTO subscriptions_customer (id, name, contact_email, created_at)
SELECT id, 'fleet-' || id, '', now() FROM bench_fleet;
INSERT INTO subscriptions_subscription (id, license_type, seats, starts_on, expires_on, trial, activation_code,
    suspended, created_at, updated_at, customer_id, first_activated_at)
SELECT id, 'ultimate', 100, current_date - 10, current_date + 355, false, upper(substr(md5('fleet' || id), 1, 24)),
       false, now(), now(), id, now()
FROM bench_fleet;
INSERT INTO subscriptions_addonpurchase (id, add_on, quantity, started_on, expires_on, trial, purchase_id,
    cancelled_at, created_at, updated_at, subscription_id)
SELECT id, 'duo_enterprise', 50, current_date - 10, current_date + 355, false,
       'F-' || upper(substr(md5('fleet' || id), 1, 12)), NULL, now(), now(), id
FROM bench_fleet;
INSERT INTO subscriptions_instance (id, instance_identifier, unique_instance_id, hostname, gitlab_version,
    activated_at, license_key_digest, license_key_prefix, suspended, created_at, subscription_id,
    deployment_type, last_error, last_error_at, last_seen_instance_id)
SELECT id, md5('fleet-instance' || id)::uuid, '', 'fleet-' || id, '17.11.0', now() - interval '2 hours',
       digest, '', false, now(), id, 'self-managed', '', NULL, ''
FROM bench_fleet;
INSERT INTO subscriptions_instancelastsync (instance_id, at) SELECT id, now() - interval '1 hour' FROM bench_fleet;
SELECT setval(pg_get_serial_sequence(name, 'id'), (SELECT max(id) FROM bench_fleet))
FROM unnest(ARRAY['subscriptions_customer', 'subscriptions_subscription', 'subscriptions_addonpurchase',
                  'subscriptions_instance']) name;
ANALYZE;
"""
# The refresh job pre-mints every fleet instance's token, in two processes (one chunk list each).
FLEET_REFRESH = """
import sys, django
django.setup()
from issuer.tokens.refresh import token_refresh_chunk, token_refresh_plan
part, parts = int(sys.argv[1]), int(sys.argv[2])
print(sum(token_refresh_chunk(first, last) for first, last in token_refresh_plan()[part::parts]))
"""


def prepare_fleet(env: dict, count: int) -> list[str]:
    """`count` more instances, filled in SQL, each with a token the refresh job pre-minted; returns their license
    keys (made and digested here, with the server's pepper)."""
    import hashlib
    import hmac
    import secrets

    import psycopg

    pepper = env["LICENSE_KEY_PEPPER"].encode()
    keys = ["cdl_" + secrets.token_urlsafe(32) for _ in range(count)]
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as connection:
        connection.execute("CREATE TEMPORARY TABLE bench_fleet (id bigint, digest text)")
        with connection.cursor().copy("COPY bench_fleet (id, digest) FROM STDIN") as copy:
            for index, key in enumerate(keys):
                copy.write_row((FLEET_FIRST_ID + index, hmac.new(pepper, key.encode(), hashlib.sha256).hexdigest()))
        connection.execute(FLEET_FILL)
    parts = 2
    refresh = [
        subprocess.Popen(
            [PY, "-c", FLEET_REFRESH, str(part), str(parts)], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        for part in range(parts)
    ]
    minted = sum(int(process.communicate()[0].strip().splitlines()[-1]) for process in refresh)
    if any(process.returncode for process in refresh) or minted < count:
        raise SystemExit(f"the refresh job minted {minted} tokens for {count} fleet instances")
    settle_database(env["DATABASE_URL"])
    return keys


def settle_database(url: str) -> None:
    """The fill's aftermath done before the turns start: autovacuum of the fresh token rows and the checkpoint of
    their WAL would otherwise land in some turns and not others (seen: the cold sync 0.30-0.34 of the bare sign in
    whole runs, 0.36-0.45 alone)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
        try:
            connection.execute("CHECKPOINT")
        except psycopg.errors.InsufficientPrivilege:
            print("(CHECKPOINT needs a superuser or pg_checkpoint: skipped)", file=sys.stderr)


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


def lua_for_fleet(keys: list[str], folder: Path) -> Path:
    """Syncs of fleet instances, each key at most once in a run: `wrk … -- FIRST COUNT` syncs keys FIRST+1 … (the
    threads interleaved over the slice); a run that would go past its slice counts the repeats as failures."""
    (folder / "fleet_keys.txt").write_text("\n".join(keys) + "\n")
    body = json.dumps({"query": SYNC, "variables": {"licenseKey": "KEY", "gitlabVersion": "17.11.0"}})
    before, after = body.split("KEY")
    script = folder / "fleet.lua"
    script.write_text(
        f'keys = {{}}\nfor line in io.lines("{folder / "fleet_keys.txt"}") do keys[#keys + 1] = line end\n'
        f"before, after = [==[{before}]==], [==[{after}]==]\n"
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        "threads, thread_count = {}, 0\n"
        "function setup(thread)\n  thread:set('tid', thread_count)\n  thread_count = thread_count + 1\n"
        "  table.insert(threads, thread)\nend\n"
        "function init(args)\n  first, slice, counter, graphql_errors = tonumber(args[1]), tonumber(args[2]), 0, 0\n"
        "  stride = 2\nend\n"
        "request = function()\n  local index = counter * stride + tid\n  counter = counter + 1\n"
        "  if index >= slice then graphql_errors = graphql_errors + 1 end\n"
        "  return wrk.format(nil, nil, nil, before .. keys[first + (index % slice) + 1] .. after)\nend\n"
        + GRAPHQL_ERRORS_LUA.replace(
            "threads = {}\nfunction setup(thread) table.insert(threads, thread) end\n", ""
        ).replace("function init(args) graphql_errors = 0 end\n", "")
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


OIDC_PROVIDER = "oidc-provider@9.13.3"
# oidc-provider's client_credentials grant issuing RS256 JWT access tokens (authenticate the client, decide the
# scopes, sign), in a cluster of as many Node processes as gunicorn has workers.
OIDC_PROVIDER_SERVER = """
import cluster from "node:cluster";
import { generateKeyPairSync } from "node:crypto";
import Provider from "oidc-provider";

const port = Number(process.argv[2]);
const workers = Number(process.argv[3]);
if (cluster.isPrimary) {
  const jwk = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" });
  for (let i = 0; i < workers; i++) cluster.fork({ BENCH_JWK: JSON.stringify({ ...jwk, use: "sig", kid: "bench" }) });
} else {
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    clients: [{ client_id: "bench", client_secret: "bench-secret", grant_types: ["client_credentials"],
                redirect_uris: [], response_types: [] }],
    jwks: { keys: [JSON.parse(process.env.BENCH_JWK)] },
    features: {
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => "https://ai-gateway.example",
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({ scope: "code_suggestions duo_chat", audience: "gitlab-ai-gateway",
                                        accessTokenFormat: "jwt", jwt: { sign: { alg: "RS256" } } }),
      },
    },
    scopes: ["code_suggestions", "duo_chat"],
  });
  provider.listen(port);
}
"""
OIDC_TOKEN_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic YmVuY2g6YmVuY2gtc2VjcmV0"
wrk.body = "grant_type=client_credentials&scope=code_suggestions%20duo_chat"
"""


def oidc_provider(port: int, workers: int = 2) -> subprocess.Popen | None:
    """oidc-provider from npm (installed once under var/), served by the machine's Node; None without node/npm."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not (node and npm):
        return None
    folder = ROOT / "var" / "bench-oidc-provider"
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "node_modules" / "oidc-provider").exists():
        subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", str(folder), OIDC_PROVIDER], check=True)
    (folder / "server.mjs").write_text(OIDC_PROVIDER_SERVER)
    server = subprocess.Popen(
        [node, "server.mjs", str(port), str(workers)], cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(150):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("oidc-provider did not start")


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
            # as config/gunicorn.conf.py serves (its access log left out)
            "--worker-class",
            "gthread",
            "--threads",
            "4",
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


def wrk(
    binary: str, url: str, duration: int, connections: int, script: Path | None = None, script_args: tuple = ()
) -> dict:
    args = [binary, "-t", "2", "-c", str(connections), "-d", f"{duration}s", "--latency", url]
    if script:
        args[1:1] = ["-s", str(script)]
    if script_args:
        args += ["--", *map(str, script_args)]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    graphql_errors = re.search(r"GraphQL errors: (\d+)", out)

    def latency(pct):
        value, unit = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    failed = (int(errors.group(1)) if errors else 0) + (int(graphql_errors.group(1)) if graphql_errors else 0)
    return {"rps": rps, "p50_ms": latency(50), "p99_ms": latency(99), "non_2xx": failed}


# Whose CPU a request costs: each process's user + system time (/proc), grouped; wrk's own from os.times().
CPU_GROUPS = ("gunicorn", "postgres", "redis", "node", "wrk", "other")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_by_process() -> dict[str, tuple[str, float]]:
    """CPU seconds used so far by each of the machine's processes, {pid: (group, seconds)}; wrk's (the children's
    of this process) under the key "wrk"."""
    spent = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        name, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        group = (
            "gunicorn"
            if b"gunicorn" in command
            else next((g for g in ("postgres", "redis", "node") if name.startswith(g)), "other")
        )
        spent[pid] = (group, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
    children = os.times()
    spent["wrk"] = ("wrk", children.children_user + children.children_system)
    return spent


def cpu_by_group(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds used between two `cpu_by_process` readings, by group: each process's own difference, so that a
    process that ended in between (a database connection closed) takes nothing off; one that started counts whole."""
    spent = dict.fromkeys(CPU_GROUPS, 0.0)
    for pid, (group, seconds) in after.items():
        spent[group] += seconds - (before[pid][1] if pid in before and before[pid][0] == group else 0.0)
    return spent


# gunicorn's workers each run Python on one core at a time (the GIL), and wrk opens its connections once, at the
# start of a turn: the kernel may hand most of them to one worker, which then serves the turn on one core while the
# other idles (seen: 1,295 req/s of the bare JSON view with all 8 connections on one worker, 3,400-3,600 with them
# shared). Such a turn measures that draw, not the code: it is run again (UNBALANCED_RETRIES times at most in all,
# for each scenario).
BALANCED_SHARE = 0.35  # each worker did at least this share of the turn's gunicorn CPU (8 connections: 4/4 or 5/3)
UNBALANCED_RETRIES = 6


def worker_cpu(server: subprocess.Popen | None) -> dict[int, float]:
    """CPU seconds used so far by each of `server`'s worker processes."""
    spent = {}
    for pid in filter(str.isdigit, os.listdir("/proc")) if server is not None else ():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == server.pid:
            spent[int(pid)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return spent


def balanced(before: dict[int, float], after: dict[int, float]) -> bool:
    used = [after[pid] - before.get(pid, 0.0) for pid in after]
    return len(used) < 2 or sum(used) < 0.5 or min(used) >= BALANCED_SHARE * sum(used)


def alternating(
    results: dict, rounds: int, scenarios: dict, duration: int, server: subprocess.Popen | None = None
) -> None:
    """Each scenario for `duration` seconds in all, in `rounds` turns taken one after the other (a baseline, then
    what is compared with it, and again), so that a drift in the machine's speed touches every scenario alike; a
    turn that `server`'s workers did not share is run again (see BALANCED_SHARE). Requests/s are over all turns;
    latencies are of the median turn; the CPU a request cost, by process group, is over all turns."""
    turns = {name: [] for name in scenarios}
    cpu = {name: dict.fromkeys(CPU_GROUPS, 0.0) for name in scenarios}
    again = dict.fromkeys(scenarios, 0)
    seconds = max(duration // rounds, 1)
    for _ in range(rounds):
        for name, run in scenarios.items():
            while True:
                before, workers_before = cpu_by_process(), worker_cpu(server)
                figures = run(seconds)
                after, workers_after = cpu_by_process(), worker_cpu(server)
                if again[name] == UNBALANCED_RETRIES or balanced(workers_before, workers_after):
                    break
                again[name] += 1
            turns[name].append(figures)
            for group, spent in cpu_by_group(before, after).items():
                cpu[name][group] += spent
    for name, figures in turns.items():
        middle = sorted(figures, key=lambda figure: figure["rps"])[len(figures) // 2]
        served = sum(figure["rps"] for figure in figures) * seconds
        results[name] = {
            "rps": sum(figure["rps"] for figure in figures) / len(figures),
            "p50_ms": middle["p50_ms"],
            "p99_ms": middle["p99_ms"],
            "non_2xx": sum(figure["non_2xx"] for figure in figures),
            "p99_over_p50": sorted(figure["p99_ms"] / figure["p50_ms"] for figure in figures)[len(figures) // 2],
            "cpu_ms": {group: spent / served * 1000 for group, spent in cpu[name].items()},
            "unbalanced_turns": again[name],
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


SCENARIOS = ("warm", "cold", "jwks", "fleet")
OIDC_SCENARIO = "oidc-provider client creds"
FLEET_PROFILE_KEYS = 1_200  # fleet instances kept out of the load, for the profile (each synced once)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=12, help="seconds of load per scenario, over all turns")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--fleet", type=int, default=100_000, help="instances of the fleet sync")
    parser.add_argument("--rounds", type=int, default=3, help="turns each scenario's duration is split into")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, default=SCENARIOS, help="scenarios to run")
    parser.add_argument(
        "--floor", action="store_true", help="also load each sync's floor (bench/floor.py): the most a sync could reach"
    )
    args = parser.parse_args()
    binary = ensure_wrk()
    database = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/issuer_bench")
    name = database.rsplit("/", 1)[1]
    subprocess.run(
        ["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
        check=True,
    )
    subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-c", f"CREATE DATABASE {name}"], check=True)
    env = bench_environment(database)
    keys = prepare(env, args.instances)
    fleet_keys = prepare_fleet(env, args.fleet) if "fleet" in args.only else []
    results = {}
    rounds = max(args.rounds, 1)
    with tempfile.TemporaryDirectory() as folder:
        script = lua_for_sync(keys, Path(folder))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        warm_group = {"bare JSON view": lambda seconds: wrk(binary, f"{base}/bench/json", seconds, args.connections)}
        if "warm" in args.only:
            warm_group["warm sync (stored token)"] = lambda seconds: wrk(
                binary, f"{base}/graphql", seconds, args.connections, script
            )
            warm_group["bare JSON, sync-sized"] = lambda seconds: wrk(
                binary, f"{base}/bench/json-large", seconds, args.connections
            )
            if args.floor:
                warm_group["warm floor"] = lambda seconds: wrk(
                    binary, f"{base}/bench/floor/warm", seconds, args.connections, script
                )
        if "jwks" in args.only:
            warm_group["JWKS"] = lambda seconds: wrk(binary, f"{base}/oauth/discovery/keys", seconds, args.connections)
        if fleet_keys:
            fleet_script = lua_for_fleet(fleet_keys, Path(folder))
            turns = rounds + UNBALANCED_RETRIES  # a slice for every turn that may be run
            slice_size = (len(fleet_keys) - FLEET_PROFILE_KEYS) // turns
            slices = iter(range(0, slice_size * turns, slice_size))
            warm_group["fleet sync (cold state)"] = lambda seconds: wrk(
                binary, f"{base}/graphql", seconds, args.connections, fleet_script, (next(slices), slice_size)
            )
            if args.floor:  # the floor writes nothing an instance's next sync reads: it walks the same slices again
                floor_slices = iter(range(0, slice_size * turns, slice_size))
                warm_group["fleet floor"] = lambda seconds: wrk(
                    binary, f"{base}/bench/floor/fleet", seconds, args.connections, fleet_script,
                    (next(floor_slices), slice_size),
                )  # fmt: skip
        if len(warm_group) > 1:
            server = serve(env, port)
            try:
                wrk(binary, f"{base}/bench/json", 2, args.connections)  # warm up both workers
                wrk(binary, f"{base}/graphql", 3, args.connections, script)  # pre-mint every instance's token
                alternating(results, rounds, warm_group, args.duration, server)
            finally:
                server.terminate()
                server.wait()
        cold_env = {**env, "ISSUER_REFRESH_THRESHOLD_SECONDS": str(10**9)}  # no stored token is ever fresh
        if "cold" in args.only:
            server = serve(cold_env, port)
            oidc_port = free_port()
            oidc = oidc_provider(oidc_port)
            cold_group = {
                "bare sign view": lambda seconds: wrk(binary, f"{base}/bench/sign", seconds, args.connections),
                "cold sync (signs)": lambda seconds: wrk(binary, f"{base}/graphql", seconds, args.connections, script),
            }
            if args.floor:
                cold_group["cold floor"] = lambda seconds: wrk(
                    binary, f"{base}/bench/floor/cold", seconds, args.connections, script
                )
            if oidc is not None:
                (Path(folder) / "oidc.lua").write_text(OIDC_TOKEN_LUA)
                cold_group[OIDC_SCENARIO] = lambda seconds: wrk(
                    binary, f"http://127.0.0.1:{oidc_port}/token", seconds, args.connections, Path(folder) / "oidc.lua"
                )
            try:
                wrk(binary, f"{base}/graphql", 2, args.connections, script)
                if oidc is not None:
                    cold_group[OIDC_SCENARIO](2)  # warm up Node's JIT
                alternating(results, rounds, cold_group, args.duration, server)
            finally:
                for process in (server, oidc):
                    if process is not None:
                        process.terminate()
                        process.wait()
    print(f"{'scenario':28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'failed':>8} {'re-run':>7}")
    for scenario, figures in results.items():
        rps, p50, p99, non_2xx = figures["rps"], figures["p50_ms"], figures["p99_ms"], figures["non_2xx"]
        print(f"{scenario:28} {rps:9.0f} {p50:8.2f} {p99:8.2f} {non_2xx:8} {figures['unbalanced_turns']:7}")
    print(f"\nmachine CPU a request, ms (user + system, by process; {os.cpu_count()} cores, all turns)")
    print(f"{'scenario':28} " + " ".join(f"{group:>8}" for group in CPU_GROUPS) + f" {'total':>8}")
    for scenario, figures in results.items():
        spent = figures["cpu_ms"]
        columns = " ".join(f"{spent[group]:8.3f}" for group in CPU_GROUPS)
        print(f"{scenario:28} {columns} {sum(spent.values()):8.3f}")
    print()
    comparisons = [
        ("warm", "warm sync / bare JSON", "warm sync (stored token)", "bare JSON view", 0.6),
        ("cold", "cold sync / bare sign", "cold sync (signs)", "bare sign view", 0.5),
        ("jwks", "JWKS / bare JSON", "JWKS", "bare JSON view", 1.0),
        ("fleet", "fleet sync / bare JSON", "fleet sync (cold state)", "bare JSON view", 0.3),
    ]
    ratios = [
        (mode, label, results[scenario]["rps"] / results[baseline]["rps"], target)
        for mode, label, scenario, baseline, target in comparisons
        if mode in args.only
    ]
    failures = {scenario: figures["non_2xx"] for scenario, figures in results.items() if figures["non_2xx"]}
    if failures:
        raise SystemExit(f"failed requests (HTTP errors, or GraphQL answers with errors), so no ratio: {failures}")
    for _mode, label, ratio, target in ratios:
        print(f"{label:28} {ratio:9.3f}  target >= {target}  {'met' if ratio >= target else 'NOT met'}")
    floors = [
        ("warm floor / bare JSON", "warm floor", "bare JSON view", 0.6),
        ("cold floor / bare sign", "cold floor", "bare sign view", 0.5),
        ("fleet floor / bare JSON", "fleet floor", "bare JSON view", 0.3),
    ]
    for label, scenario, baseline, target in floors:
        if scenario in results:
            ratio = results[scenario]["rps"] / results[baseline]["rps"]
            print(
                f"{label:28} {ratio:9.3f}  (information: only what every sync must do; the target {target} is "
                f"{'within' if ratio >= target else 'beyond'} its reach here)"
            )
    if "warm" in args.only:
        tail = results["warm sync (stored token)"]["p99_over_p50"]
        print(
            f"{'warm sync p99 / p50':28} {tail:9.3f}  target <= 2.0 at {args.connections} connections (median of turns)"
            f"  {'met' if tail <= 2.0 else 'NOT met'}"
        )
        same_size = results["warm sync (stored token)"]["rps"] / results["bare JSON, sync-sized"]["rps"]
        print(f"{'warm sync / sync-sized JSON':28} {same_size:9.3f}  (information: the same ~22 kB answer, no logic)")
    if OIDC_SCENARIO in results:
        oidc = results[OIDC_SCENARIO]["rps"]
        print(
            f"{'oidc-provider / cold sync':28} {oidc / results['cold sync (signs)']['rps']:9.3f}  (information: "
            f"{OIDC_PROVIDER}, client_credentials, RS256 JWT, {oidc:.0f} tokens/s, persists nothing)"
        )
    if "fleet" in args.only:
        fleet = results["fleet sync (cold state)"]["rps"]
        cores = os.cpu_count() or 1
        hourly = 1_000_000 / 3600
        print(
            f"{'fleet syncs/s per core':28} {fleet / cores:9.0f}  (information: {cores} cores, wrk on the same ones)\n"
            f"{'web nodes, 1 M hourly syncs':28} {math.ceil(hourly * 3 / fleet):9d}  (information: nodes like this one "
            f"for {hourly:.0f} syncs/s with 3x headroom, at the fleet sync's rate)"
        )
    overrides = {"warm": {}, "fleet": {}, "cold": {"ISSUER_REFRESH_THRESHOLD_SECONDS": str(10**9)}}
    for mode, label, ratio, target in ratios:
        if mode in overrides and (ratio < target or mode == "fleet"):
            print(f"\n{label}: where the time goes" + (" (below its target)" if ratio < target else ""))
            profile(env | overrides[mode], fleet_keys[-FLEET_PROFILE_KEYS:] if mode == "fleet" else keys, mode)


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
