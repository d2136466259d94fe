"""Run a benchmark script under another source tree and read the JSON line it prints last: the A/B loops'
one call (launch/bench_ab.py, launch/bench_small.py); never used by the engine."""
import json
import os
import subprocess
import sys
from pathlib import Path


def run_json(tree, cmd, who):
    """Run ``cmd`` with ``tree`` first on the path (its own numba cache, one thread) and return the JSON
    object of its last output line; exit with the command's stderr if it fails."""
    env = dict(os.environ, PYTHONPATH=str(tree), NUMBA_CACHE_DIR=str(Path(tree) / ".numba_cache"),
               NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{who}: {' '.join(cmd)} failed in {tree}:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
