"""CPU time per step of the sweeps' small systems (issue 18), as a study runs them: one fig5b configuration
(log, absorbed and steady stops, checkpoints every 2 minutes, its output file) through ``Simulation.run``
from a random start, a warm-up of --warmup steps, then --steps steps timed by the process's CPU time.
Not a test; docs/performance.md, "Small systems".

Each measurement is a fresh process with a tree first on PYTHONPATH (its own numba cache); with --ref TREE
the reference tree and this one alternate (ref, this, ref, this, ...) so that both see the same load.
The trajectory is the same in both trees, so both time the same steps. Prints one line per run and a
table of medians (us per step) with the change.

    launch/bench_small.py --ref /work/wt/refe912 --reps 3 --point bro0.1 --n 1000 --n 2000 --n 8000
    launch/bench_small.py --point bro0.025 --n 1000 --profile        # cProfile of the timed steps, this tree
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _tree_run import run_json  # (launch/, the script's own directory)

HERE = Path(__file__).resolve().parents[1]

# The studies' configurations (launch/examples/fig5b/*/small.toml), at a phi near their phi_c.
POINTS = {
    "bro0.1": ({"scheme": "bro-pairwise", "kick_size": 0.1}, 0.5575,
               {"log_every": 50, "steady_every": 1000, "steady_min_steps": 20000, "step_kind": "dense"}),
    "bro0.05": ({"scheme": "bro-pairwise", "kick_size": 0.05}, 0.6,
                {"log_every": 200, "steady_every": 4000, "steady_min_steps": 160000, "step_kind": "auto"}),
    "bro0.025": ({"scheme": "bro-pairwise", "kick_size": 0.025}, 0.61,
                 {"log_every": 200, "steady_every": 4000, "steady_min_steps": 320000, "step_kind": "auto"}),
    "bro0.0125": ({"scheme": "bro-pairwise", "kick_size": 0.0125}, 0.63,
                  {"log_every": 400, "steady_every": 8000, "steady_min_steps": 640000, "step_kind": "auto"}),
    "sgd0.1": ({"scheme": "sgd", "learning_rate": 0.2, "batch_fraction": 0.5}, 0.52,
               {"log_every": 50, "steady_every": 1000, "steady_min_steps": 80000, "step_kind": "dense"}),
}


def study_config(point, n, phi=None, step_kind=None, seed=1):
    dyn, phi0, run = POINTS[point]
    run = dict(run, steps=2 * 10 ** 6, stop_when_absorbed=True, stop_when_steady=True, checkpoint_minutes=2.0,
               progress_seconds=0.0)
    if step_kind:
        run["step_kind"] = step_kind
    return {"system": {"dim": 3, "n": n, "phi": phi0 if phi is None else phi, "seed": seed},
            "dynamics": dict(dyn), "run": run}


def child(a):
    """One measurement in this process (mpisim from PYTHONPATH): a JSON line."""
    from mpisim import Simulation
    cfg = study_config(a.point, a.n[0], a.phi, a.step_kind)
    with tempfile.TemporaryDirectory() as d:
        sim = Simulation.from_config(cfg, output=str(Path(d) / "run.h5"))
        sim.stop_on_signals()
        sim.run(steps=a.warmup)
        step0 = sim.step
        prof = None
        if a.profile:
            import cProfile
            prof = cProfile.Profile(time.process_time)
            prof.enable()
        c0, t0 = time.process_time(), time.perf_counter()
        sim.run(steps=a.steps)
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        if prof is not None:
            import pstats
            prof.disable()
            pstats.Stats(prof, stream=sys.stderr).sort_stats(a.sort).print_stats(a.lines)
        done = sim.step - step0
        activity = sim.history["activity"][-1]
        sim.close()
    print(json.dumps({"point": a.point, "n": a.n[0], "steps": done, "us_per_step": 1e6 * cpu / max(done, 1),
                      "wall_us_per_step": 1e6 * wall / max(done, 1), "activity": activity,
                      "stopped": sim.stop_reason, "rebuilds": sim.rebuilds, "sparse_steps": sim.sparse_steps}))


def run_in(tree, a, point, n):
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--point", point, "--n", str(n),
           "--warmup", str(a.warmup), "--steps", str(a.steps)]
    if a.phi is not None:
        cmd += ["--phi", str(a.phi)]
    if a.step_kind:
        cmd += ["--step-kind", a.step_kind]
    return run_json(tree, cmd, "bench_small")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--point", action="append", choices=sorted(POINTS), required=True)
    p.add_argument("--n", action="append", type=int, required=True)
    p.add_argument("--phi", type=float, default=None, help="instead of the point's")
    p.add_argument("--step-kind", default=None, help="instead of the point's (dense, auto, sparse)")
    p.add_argument("--warmup", type=int, default=2000)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--ref", default=None, help="a reference source tree, alternated with this one")
    p.add_argument("--profile", action="store_true", help="cProfile the timed steps (this process, to stderr)")
    p.add_argument("--sort", default="tottime")
    p.add_argument("--lines", type=int, default=40)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child or a.profile:
        a.point = a.point[0]
        return child(a)
    trees = ({"ref": Path(a.ref).resolve()} if a.ref else {}) | {"this": HERE}
    got = {}
    for point in a.point:
        for n in a.n:
            for rep in range(a.reps):
                for name, tree in trees.items():
                    r = run_in(tree, a, point, n)
                    got.setdefault((point, n), {}).setdefault(name, []).append(r["us_per_step"])
                    print(f"{name} rep {rep} {point} N={n}: {r['us_per_step']:.1f} us/step CPU "
                          f"({r['wall_us_per_step']:.1f} wall), {r['steps']} steps, f_a {r['activity']:.4f}, "
                          f"{r['rebuilds']} builds, {r['sparse_steps']} sparse, load {os.getloadavg()[0]:.2f}",
                          flush=True)
    print(f"\nCPU us per step (warm-up {a.warmup}, timed {a.steps})\n| point | N | "
          + " | ".join(str(t) for t in trees.values()) + (" | change of the medians |" if a.ref else " |"))
    for (point, n), by in got.items():
        fmt = lambda xs: ", ".join(f"{x:.0f}" for x in xs)      # noqa: E731
        row = f"| {point} | {n} | " + " | ".join(fmt(by[k]) for k in trees)
        if a.ref:
            row += f" | {100 * (statistics.median(by['this']) / statistics.median(by['ref']) - 1):+.1f} %"
        print(row + " |")


if __name__ == "__main__":
    main()
