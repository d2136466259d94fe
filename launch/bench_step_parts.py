"""Where a dense step's time goes (not a test): CPU time per step of a ``run()`` segment, split by
component (each wrapped with a timer), then the kernels of one list build on a frozen state (minimum
over repeated calls). One rank, the configuration of launch/bench.py (N, phi, d = 3, one scheme, a kick).

    PYTHONPATH=TREE python launch/bench_step_parts.py --n 1e5 --kick 0.05          # one JSON line + a table

Used for docs/performance.md, "Large kicks"; compare trees by running it alternately with each tree first
on PYTHONPATH.
"""
import argparse
import json
import os
import time

import numpy as np

from _cpu_timers import CpuTimers


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scheme", default="bro-pairwise")
    p.add_argument("--n", type=float, default=1e5)
    p.add_argument("--phi", type=float, default=0.6)
    p.add_argument("--kick", type=float, default=0.05)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--reps", type=int, default=7, help="calls per kernel on the frozen state (minimum kept)")
    p.add_argument("--step-kind", default="dense")
    p.add_argument("--pair-search", default="auto")
    a = p.parse_args()
    from mpisim import Simulation
    from mpisim.core import cells as cells_module
    from mpisim.core import kernels
    from mpisim.core import neighbour_list as nl_module
    from mpisim.parallel import domain as domain_module

    dyn = {"scheme": a.scheme}
    if a.scheme.startswith("bro") or a.scheme.startswith("ro"):
        dyn["kick_size"] = a.kick
    else:
        dyn.update({"learning_rate": 4 * a.kick / 3, "batch_fraction": 0.75})
    cfg = {"system": {"n": int(a.n), "phi": a.phi, "dim": 3, "seed": 1}, "dynamics": dyn,
           "run": {"steps": 10 ** 6, "log_every": 100, "progress_seconds": 0.0, "stop_when_absorbed": False,
                   "step_kind": a.step_kind, "pair_search": a.pair_search}}
    sim = Simulation.from_config(cfg, write=False)
    sim.run(steps=a.warmup)

    timers = CpuTimers()
    spent, calls, timed = timers.spent, timers.calls, timers.wrap

    originals = []
    for obj, name, label in [(sim.domain, "migrate", "migrate"), (sim.domain, "borders", "borders (ghosts)"),
                             (sim.domain, "forward", "forward (ghost refresh)"),
                             (sim.nlist, "sort", "spatial sort"),
                             (cells_module.CellList, "build", "cell binning"),
                             (cells_module.PairList, "build", "list build"),
                             (nl_module.kernels, "cell_pair_pass", "cell pass (search + pair work)"),
                             (sim._pair_kernels, "pair_pass", "pair pass over the list"),
                             (kernels, "apply_step", "update (apply_step)"),
                             (sim.domain, "max_floats", "max all-reduce"),
                             (sim.domain, "sum_int", "int all-reduces")]:
        originals.append((obj, name, timed(obj, name, label)))
    c0, t0 = time.process_time(), time.perf_counter()
    step0, rebuilds0 = sim.step, sim.rebuilds
    sim.run(steps=a.steps)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    for obj, name, f in originals:
        setattr(obj, name, f)
    steps = sim.step - step0
    parts = {k: 1e3 * v / steps for k, v in spent.items()}
    parts["rest (Python, bookkeeping)"] = 1e3 * cpu / steps - sum(parts.values())

    # Kernels on the frozen state of the last build: the skin-0 list build, the pass over that list and the
    # cell pass's cluster search.
    st, nl = sim.state, sim.nlist
    c = nl.cells
    n = st.n_own + st.n_ghost
    first = np.zeros(40 * n, dtype=np.int32)
    second = np.zeros_like(first)
    d = sim.dynamics
    frozen = {}

    def best(label, f):
        ts = []
        for _ in range(a.reps):
            c0 = time.process_time()
            f()
            ts.append(time.process_time() - c0)
        frozen[label] = 1e3 * min(ts)

    scratch = np.zeros((n + 16, 3))
    best("cell binning", lambda: c.build(st.pos, st.shift, sim.box, st.n_own, n, scratch))
    edges = getattr(c, "periodic_edges", None)      # (absent in trees before periodic cells in d <= 3)
    extra = (edges,) if edges is not None else ()
    m = cells_module.build_pairs(c.sorted_pos, c.order, st.n_own, nl.reach, c.cell_start, c.dims, c.owned_lo,
                                 c.owned_hi, *extra, first, second)
    best("list build (scan_rows)", lambda: cells_module.build_pairs(c.sorted_pos, c.order, st.n_own, nl.reach,
                                                                    c.cell_start, c.dims, c.owned_lo, c.owned_hi,
                                                                    *extra, first, second))

    def pass_once():
        st.acc[:n] = 0
        st.active[:n] = 0
        kernels.pair_pass(d.scheme, d.params, d.potential, sim.seed, sim.step, st.pos, st.ids, st.radius, st.n_own,
                          sim.box, first, second, m, st.acc, st.active, sim.counters, False)
    best("pair pass over that list", pass_once)
    if hasattr(cells_module, "scan_clusters") and (c.periodic_edges > 0).all():
        # the cell pass's own search on a rank with every axis periodic (absent in trees before it)
        best("cell pass search (scan_clusters)", lambda: cells_module.scan_clusters(
            c.sorted_pos, c.order, c.cell_of, nl.reach, c.cell_start, c.dims, c.periodic_edges, 0,
            int(c.dims[1] * c.dims[2]), first, second))
    best("update (apply_step, copies)", lambda: kernels.apply_step(
        d.scheme, d.params, sim.seed, sim.step, 3, st.pos.copy(), st.image.copy(), st.ids, st.n_own, sim.box,
        st.acc.copy(), st.active, st.aux, st.noise, st.travel.copy(), np.zeros(kernels.N_DISP, np.int64)))
    ncells = int(np.prod(c.dims))
    out = {"scheme": a.scheme, "n": int(a.n), "phi": a.phi, "kick": a.kick, "steps": steps,
           "rebuilds_per_step": (sim.rebuilds - rebuilds0) / steps, "cpu_ms_per_step": 1e3 * cpu / steps,
           "wall_ms_per_step": 1e3 * wall / steps, "parts_ms": parts, "frozen_ms": frozen,
           "rows": n, "n_own": st.n_own, "pairs_skin": int(m), "reach": nl.reach, "cells": ncells,
           "particles_per_cell": n / ncells, "activity": float(sim.observables["activity"][-1]),
           "loadavg": os.getloadavg()}
    print(json.dumps(out))
    print(f"# {a.scheme} N={int(a.n)} eps={a.kick}: {out['cpu_ms_per_step']:.2f} CPU ms/step "
          f"(wall {out['wall_ms_per_step']:.2f}), {out['rebuilds_per_step']:.2f} rebuilds/step, load "
          f"{os.getloadavg()[0]:.2f}")
    for k, v in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"#   {k:<36s} {v:7.2f} ms")
    print(f"# frozen state ({n} rows, {m} pairs within reach {nl.reach:.4f}, {n / ncells:.2f} rows per cell):")
    for k, v in frozen.items():
        print(f"#   {k:<36s} {v:7.2f} ms")


if __name__ == "__main__":
    main()
