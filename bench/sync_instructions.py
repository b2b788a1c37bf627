#!/usr/bin/env python
"""Instructions a sync costs, counted by valgrind's callgrind: the same figure at every run of the same code, on a
machine whose speed drifts by a quarter within minutes (docs/performance.md), where a change of 2-3% is invisible
to a timed benchmark.

    .venv/bin/python bench/sync_instructions.py [--requests 200] [--against REF]

Warm syncs (the state cached) and fleet syncs (the state not cached: the database read) are made in-process with
Django's test client on PostgreSQL and Redis, and only the loop of syncs is counted (`--toggle-collect`: the loop runs
inside libc's `qsort`, as its comparison function). What the Python process runs is counted; PostgreSQL's and
Redis's own work is not. Each sync writes its own last sync (`SYNC_RECORD_BATCH_SECONDS=0`), so no thread of its
own does work outside the count; `PYTHONHASHSEED=0` makes the dictionaries' layout, and so the count, repeatable.
`--against REF` counts the code of a commit too (a worktree of it, with this checkout's virtualenv), each run on
instances no other run synced.

Recreates its own database, issuer_bench_instructions on the local PostgreSQL (never the one DATABASE_URL names), and
uses Redis database 10 (REDIS_URL, if set, names another); installs valgrind (Debian's package) if missing.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.http_bench import PY, ROOT, bench_environment, prepare, prepare_fleet  # noqa: E402

WARM_UP = 30
CHILD = """
import ctypes, json, sys, django
django.setup()
import gc
from django.test import Client
from bench.sync_profile import SYNC
keys, warm_up = json.load(open(sys.argv[1])), int(sys.argv[2])
client = Client()
bodies = [json.dumps({"query": SYNC, "variables": {"licenseKey": k, "gitlabVersion": "17.11.0"}}) for k in keys]
def sync(body):
    response = client.post("/graphql", body, content_type="application/json")
    assert response.status_code == 200 and b'"errors"' not in response.content, response.content[:300]
for body in bodies[:warm_up]:
    sync(body)
gc.collect()
gc.freeze()
def counted(_a, _b):
    for body in bodies[warm_up:]:
        sync(body)
    return 0
libc = ctypes.CDLL(None)
pair = (ctypes.c_int * 2)(1, 2)
comparison = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
libc.qsort(pair, 2, ctypes.sizeof(ctypes.c_int), comparison(counted))
print("counted", len(bodies) - warm_up)
"""


def ensure_valgrind() -> None:
    if shutil.which("valgrind") is None:
        subprocess.run(["apt-get", "install", "-y", "-q", "valgrind"], check=True, capture_output=True)


def instructions(tree: Path, env: dict, keys: list[str], warm_up: int) -> float:
    """Instructions a sync, over the syncs of `keys` after the first `warm_up`, with the code in `tree`."""
    with tempfile.TemporaryDirectory() as folder:
        keys_file, out = Path(folder) / "keys.json", Path(folder) / "callgrind.out"
        keys_file.write_text(json.dumps(keys))
        command = [
            "valgrind",
            "--tool=callgrind",
            "--toggle-collect=*qsort*",
            f"--callgrind-out-file={out}",
            PY,
            "-c",
            CHILD,
            str(keys_file),
            str(warm_up),
        ]
        child_env = {**env, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0", "SYNC_RECORD_BATCH_SECONDS": "0"}
        run = subprocess.run(command, cwd=tree, env=child_env, capture_output=True, text=True)
        counted = re.search(r"^counted (\d+)$", run.stdout, re.MULTILINE)
        if run.returncode or counted is None:
            raise SystemExit(f"the counted run failed in {tree}:\n{run.stdout[-2000:]}{run.stderr[-3000:]}")
        total = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
        return int(total.group(1)) / int(counted.group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="syncs counted a run")
    parser.add_argument("--against", help="a commit to count too, for a before/after")
    args = parser.parse_args()
    ensure_valgrind()
    name = "issuer_bench_instructions"
    database = f"postgres://postgres@127.0.0.1:5432/{name}"
    for statement in (f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}"):
        subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-c", statement], check=True)
    env = bench_environment(database, REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/10"))
    trees = {"this checkout": ROOT}
    worktree = None
    if args.against:
        worktree = Path(tempfile.mkdtemp()) / "against"
        subprocess.run(["git", "worktree", "add", "-f", "--detach", str(worktree), args.against], cwd=ROOT, check=True)
        (worktree / ".venv").symlink_to(ROOT / ".venv")
        trees = {args.against: worktree, **trees}
    try:
        warm_keys = prepare(env, 200)
        per_run = args.requests + WARM_UP
        fleet_keys = iter(prepare_fleet(env, per_run * len(trees)))
        print(f"{'code':24} {'warm sync':>14} {'fleet sync':>14}  (instructions a sync, Python process only)")
        for label, tree in trees.items():
            warm_up = len(warm_keys) * 2  # every state cached before the count
            warm = instructions(tree, env, (warm_keys * 10)[: warm_up + args.requests], warm_up)
            fleet = instructions(tree, env, [next(fleet_keys) for _ in range(per_run)], WARM_UP)
            print(f"{label:24} {warm:14,.0f} {fleet:14,.0f}")
    finally:
        if worktree is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, check=False)


if __name__ == "__main__":
    main()
