"""A/B benchmark of two source trees: launch/bench.py of a reference tree and of this one, alternated.

Each point is run --reps times per tree, the trees alternating (A B A B ...) so that both see the same
load; each run is a fresh process with the tree first on PYTHONPATH and its own numba cache. Prints one
line per run and a table of the medians (particle-steps/s) with the change. --cpu rates by the process's
CPU time (``time.process_time`` of the timed steps) instead of the wall clock: the figure to compare on a
shared machine, where wall time measures the other processes too.

    git worktree add /tmp/ref e2fd075                  # the reference, e.g. before a change
    launch/bench_ab.py /tmp/ref --reps 3 --point "--scheme bro-pairwise --n 1e5 --kick 0.002" \\
        --point "--scheme sgd --n 1e5 --kick 0.05 --dim 2"
"""
import argparse
import os
import shlex
import statistics
import sys
from pathlib import Path

from _tree_run import run_json  # (launch/, the script's own directory)

HERE = Path(__file__).resolve().parents[1]


def run(tree, point, steps):
    cmd = [sys.executable, str(Path(tree) / "launch" / "bench.py"), "--steps", str(steps), *shlex.split(point)]
    return run_json(tree, cmd, "bench_ab")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("reference", help="the reference source tree (a checkout with launch/bench.py)")
    p.add_argument("--point", action="append", required=True, help="launch/bench.py arguments of one point")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--cpu", action="store_true", help="particle-steps per CPU second (else per wall second)")
    a = p.parse_args()
    ref = Path(a.reference).resolve()
    if not (ref / "launch" / "bench.py").is_file():
        print(f"bench_ab: reference {ref} has no launch/bench.py (give a source tree, e.g. a git worktree)",
              file=sys.stderr)
        sys.exit(2)
    trees = {"ref": ref, "this": HERE}
    rates = {}
    for point in a.point:
        for rep in range(a.reps):
            for name, tree in trees.items():
                r = run(tree, point, a.steps)
                per_cpu = r["n"] * r["steps"] / r["cpu_seconds"]
                rates.setdefault(point, {}).setdefault(name, []).append(per_cpu if a.cpu else r["particle_steps_per_s"])
                print(f"{name} rep {rep} {point}: {r['particle_steps_per_s']:.3e} particle-steps/s, "
                      f"{per_cpu:.3e} per CPU-s, {r.get('bytes_per_particle', float('nan')):.1f} B/particle, "
                      f"load {os.getloadavg()[0]:.2f}", flush=True)
    print(f"\n{'CPU' if a.cpu else 'wall'} time\n| point | {ref} | {HERE} | change of the medians |\n|---|---|---|---|")
    for point, by in rates.items():
        m_ref, m_this = statistics.median(by["ref"]), statistics.median(by["this"])
        fmt = lambda xs: ", ".join(f"{x:.3g}" for x in xs)
        print(f"| {point} | {fmt(by['ref'])} | {fmt(by['this'])} | {100 * (m_this / m_ref - 1):+.1f} % |")


if __name__ == "__main__":
    main()
