"""Benchmark of the sparse step: time per step against the active fraction f_a, dense and sparse side by side.

One trajectory from a random start to absorption (or --steps), run twice in the same process with the same
seed: once with run.step_kind = dense and once with another kind (sparse or auto), advanced alternately in
segments of --segment steps (the order reversed every other segment) through the Python API (sim.run(steps=...)), so that both see the same load of
the machine. The two trajectories are bitwise the same (checked at the end), so each segment has one f_a.
Prints one JSON line per segment on rank 0 and a summary by f_a band; --plot FILE.jsonl makes the figure.

    python launch/bench_sparse.py --scheme bro-pairwise --n 1e5 --kick 0.05 --phi 0.55 > out.jsonl
    mpirun -n 2 python launch/bench_sparse.py ...                      # 2 ranks
    python launch/bench_sparse.py --plot out1.jsonl out2.jsonl -o docs/figures/sparse-step.png
    python launch/bench_sparse.py --overhead --n 1e4       # where a sparse step's time goes at f_a < 0.001
    python launch/bench_sparse.py --n 8000 --kick 0.1 --keep-skin   # also auto with the old skin rule
"""
import argparse
import json
import sys
import time

import numpy as np

from _cpu_timers import CpuTimers

BANDS = [(0.5, 1.01), (0.03, 0.5), (0.005, 0.03), (0.001, 0.005), (0.0, 0.001)]


def config(scheme, n, phi, dim, kick, steps, kind, seed):
    dyn = {"scheme": scheme}
    if scheme in ("bro-pairwise", "bro-individual"):
        dyn["kick_size"] = kick
    else:
        # The paper's matching: alpha = eps / b_f with b_f = 3/4 (gd: alpha = eps), as launch/bench.
        dyn["learning_rate"] = kick if scheme == "gd" else 4 * kick / 3
        if scheme != "gd":
            dyn["batch_fraction"] = 0.75
    return {"system": {"n": n, "phi": phi, "dim": dim, "seed": seed}, "dynamics": dyn,
            "run": {"steps": steps, "log_every": 10 ** 9, "progress_seconds": 0.0, "step_kind": kind,
                    "stop_when_absorbed": True}}


def bench(a):
    from mpisim import Simulation
    from mpisim.parallel.comm import world
    comm = world()
    n = int(a.n)
    warm_up(a, comm)
    kinds = ("dense", a.kind) + (("kept",) if a.keep_skin else ())
    sims = {kind: Simulation.from_config(config(a.scheme, n, a.phi, a.dim, a.kick, a.steps,
                                                "auto" if kind == "kept" else kind, a.seed),
                                         write=False, comm=comm) for kind in kinds}
    if a.keep_skin:
        # auto with the skin rule before 7e984e8: the skin kept whenever few particles are active
        sims["kept"].nlist.always_keep_skin = True
    for sim in sims.values():
        sim.run(steps=1)                 # first rebuild
    rows = []
    while True:
        f_a = activity(sims["dense"])
        out = {"scheme": a.scheme, "n": n, "phi": a.phi, "dim": a.dim, "kick": a.kick, "ranks": comm.size,
               "step": sims["dense"].step, "f_a": f_a, "segment": a.segment}
        for kind, sim in (sims.items() if len(rows) % 2 == 0 else reversed(sims.items())):
            steps0, rebuilds0, sparse0 = sim.step, sim.rebuilds, sim.sparse_steps
            if hasattr(comm, "Barrier"):
                comm.Barrier()
            t0, c0 = time.perf_counter(), time.process_time()
            sim.run(steps=a.segment)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            wall = max(comm.allgather(wall)) if comm.size > 1 else wall
            done = max(sim.step - steps0, 1)
            out[f"{kind}_ms_per_step"] = 1e3 * wall / done
            # CPU time of this rank's process: on a shared machine closer to the cost than the wall time
            out[f"{kind}_cpu_ms_per_step"] = 1e3 * cpu / done
            out[f"{kind}_rebuilds_per_step"] = (sim.rebuilds - rebuilds0) / done
            out[f"{kind}_sparse_share"] = (sim.sparse_steps - sparse0) / done
        out["f_a_end"] = activity(sims["dense"])
        rows.append(out)
        if comm.rank == 0:
            print(json.dumps(out), flush=True)
        d, s = sims["dense"], sims[a.kind]
        if d.step != s.step:
            raise RuntimeError(f"the two runs stopped at different steps ({d.step}, {s.step})")
        if d.absorbed_step >= 0 or d.step >= a.steps:
            break
    for kind in kinds[1:]:
        for x, y in zip(sims["dense"].snapshot(), sims[kind].snapshot()):
            if not np.array_equal(x, y):
                raise RuntimeError(f"dense and {kind} trajectories differ")
    if comm.rank == 0:
        summary(rows, a.kind, sys.stderr)


def warm_up(a, comm):
    """Compile (or load from numba's cache) every kernel of the dense and sparse paths on a small system
    run to absorption, so that no timed segment includes a compilation."""
    from mpisim import Simulation
    for kind in ("dense", "auto", "sparse"):
        cfg = config(a.scheme, 2000 * comm.size, a.phi, a.dim, a.kick, 3000, kind, a.seed)
        Simulation.from_config(cfg, write=False, comm=comm).run()


def overhead(a):
    """CPU time per step of a run() segment at low activity, split by component (wrapped with timers)."""
    from mpisim import Simulation
    from mpisim.parallel.comm import world
    comm = world()
    n = int(a.n)
    warm_up(a, comm)
    cfg = config(a.scheme, n, a.phi, a.dim, a.kick, a.steps, "auto", a.seed)
    cfg["run"]["stop_when_absorbed"] = False      # a full segment even if it absorbs (then: the floor)
    cfg["run"]["log_every"] = 100
    sim = Simulation.from_config(cfg, write=False, comm=comm)
    sim.run(steps=1)
    while activity(sim) > a.below and sim.absorbed_step < 0:
        sim.run(steps=10)
    timers = CpuTimers()
    spent, calls, timed = timers.spent, timers.calls, timers.wrap

    from mpisim import simulation as simulation_module
    timed(sim.domain, "forward_changed", "halo refresh of moved rows")
    timed(sim.nlist.sparse, "pair_pass", "sparse pair pass")
    timed(sim.nlist.sparse, "apply", "sparse update")
    timed(simulation_module, "preview_step", "preview of the update (early reduction)")
    timed(sim.domain, "max_floats", "max all-reduce (vote, step, activity, absorbed)")
    timed(sim.domain, "sum_int", "integer all-reduces (absorbing check, logs)")
    timed(sim.nlist, "rebuild", "list rebuilds")
    f_a, step0 = activity(sim), sim.step
    c0 = time.process_time()
    sim.run(steps=a.segment)
    total = time.process_time() - c0
    steps = max(sim.step - step0, 1)
    if comm.rank == 0:
        print(f"N = {n}, {a.scheme}, f_a = {f_a:.5f} -> {activity(sim):.5f}, {steps} steps, "
              f"{comm.size} rank(s): {1e6 * total / steps:.1f} us CPU per step")
        for label, t in sorted(spent.items(), key=lambda kv: -kv[1]):
            print(f"  {label:<48} {1e6 * t / steps:8.1f} us  ({calls[label] / steps:.2f} calls per step)")
        print(f"  {'rest (Python step loop, bookkeeping)':<48} {1e6 * (total - sum(spent.values())) / steps:8.1f} us")


def activity(sim):
    """Global active fraction at the current step (the last pass's flags)."""
    from mpisim.core import kernels
    st = sim.state
    return int(sim.domain.sum_int(np.array([kernels.count_active(st.active, st.n_own)]))[0]) / sim.n_total


def band_rows(rows, lo, hi):
    return [r for r in rows if lo <= 0.5 * (r["f_a"] + r["f_a_end"]) < hi]


def summary(rows, kind, out):
    print(f"{'f_a band':>16} {'segments':>8} {'dense ms':>9} {kind + ' ms':>10} {'speed-up':>8}", file=out)
    for lo, hi in BANDS:
        sel = band_rows(rows, lo, hi)
        if not sel:
            continue
        d = np.mean([r["dense_ms_per_step"] for r in sel])
        s = np.mean([r[f"{kind}_ms_per_step"] for r in sel])
        print(f"{lo:>7.3f} - {hi:<6.3f} {len(sel):>8d} {d:>9.2f} {s:>10.2f} {d / s:>8.1f}", file=out)


def plot(paths, output, timing="cpu"):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    n_first = json.loads(next(line for line in open(paths[0]) if line.startswith("{")))["n"]
    for k, path in enumerate(paths):
        rows = [json.loads(line) for line in open(path) if line.startswith("{")]
        kind = [key[:-12] for key in rows[0] if key.endswith("_ms_per_step") and not key.startswith("dense")
                and not key.endswith("_cpu_ms_per_step")][0]
        col = "_cpu_ms_per_step" if timing == "cpu" else "_ms_per_step"
        r0 = rows[0]
        label = f"{r0['scheme']}, {r0['ranks']} rank{'s' if r0['ranks'] > 1 else ''}"
        if r0["n"] != n_first:
            label += f", N = {r0['n']:.0e}"
        f = np.array([max(0.5 * (r["f_a"] + r["f_a_end"]), 1e-5) for r in rows])
        color = f"C{k}"
        ax.loglog(f, [r["dense" + col] for r in rows], "o--", ms=3, lw=0.6, color=color, alpha=0.45,
                  label=f"{label}, dense")
        ax.loglog(f, [r[kind + col] for r in rows], "s-", ms=3, lw=0.8, color=color,
                  label=f"{label}, {kind}")
    r0 = json.loads(next(line for line in open(paths[0]) if line.startswith("{")))
    ax.set_xlabel("active fraction $f_a$")
    ax.set_ylabel(("CPU" if timing == "cpu" else "wall") + " time per step (ms)")
    ax.set_title(f"N = {r0['n']:.0e}, d = {r0['dim']}, phi = {r0['phi']}, eps = {r0['kick']} (shared 2-core VM)",
                 fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(output, dpi=120)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scheme", default="bro-pairwise")
    p.add_argument("--n", type=float, default=1e5)
    p.add_argument("--phi", type=float, default=0.55)
    p.add_argument("--dim", type=int, default=3)
    p.add_argument("--kick", type=float, default=0.05, help="eps (alpha = 4 eps / 3, b_f = 3/4 for sgd-like)")
    p.add_argument("--steps", type=int, default=100000, help="at most this many steps")
    p.add_argument("--segment", type=int, default=50)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--kind", default="auto", choices=["sparse", "auto"], help="compared with dense")
    p.add_argument("--keep-skin", action="store_true",
                   help="also auto with the skin kept whenever few particles are active (the rule before 7e984e8)")
    p.add_argument("--plot", nargs="+", metavar="JSONL", help="plot these results instead of running")
    p.add_argument("--overhead", action="store_true", help="split the CPU time of a low-activity segment")
    p.add_argument("--below", type=float, default=0.001, help="--overhead: run until f_a is below this")
    p.add_argument("-o", "--output", default="sparse-step.png")
    p.add_argument("--timing", default="cpu", choices=["cpu", "wall"], help="--plot: which time per step")
    a = p.parse_args()
    if a.plot:
        plot(a.plot, a.output, a.timing)
    elif a.overhead:
        overhead(a)
    else:
        bench(a)


if __name__ == "__main__":
    main()
