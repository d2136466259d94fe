"""CPU time per step in d dimensions and the share of it in neighbour-list builds (serial, dense step).

    python launch/bench_dims.py --dim 5 --n 2e4 --phi 0.25 --kick 0.1 --steps 100

prints one JSON line: CPU ms per step, particle-steps per CPU second, the builds' share, rebuilds, listed
pairs per particle, the box edge and the load average (docs/algorithms.md, "Dimensions 4 to 6"); with
``--pass-repeats K`` also the CPU time of one dense pair pass over the last list (the kernel alone, called
K times on the final state). Which tree is measured is the one first on PYTHONPATH: alternate two trees
by calling this script with each in turn (docs/algorithms.md, "Cost per d").
"""
import argparse
import json
import os
import time


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dim", type=int, default=4)
    p.add_argument("--n", type=float, default=2e4)
    p.add_argument("--phi", type=float, default=0.4)
    p.add_argument("--kick", type=float, default=0.1, help="bro-pairwise eps")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--scheme", default="bro-pairwise", help="a scheme taking kick_size")
    p.add_argument("--skin", type=float, default=None, help="run.skin (default: the config default)")
    p.add_argument("--pass-repeats", type=int, default=0, help="time the pair pass alone, this many calls")
    a = p.parse_args()
    import numpy as np
    from mpisim import Simulation
    from mpisim.core.neighbour_list import NeighbourList
    from mpisim.parallel.comm import SerialComm
    build = [0.0]
    rebuild = NeighbourList.rebuild

    def timed(self, *args, **kwargs):
        t = time.process_time()
        rebuild(self, *args, **kwargs)
        build[0] += time.process_time() - t

    NeighbourList.rebuild = timed
    n = int(a.n)
    cfg = {"system": {"n": n, "phi": a.phi, "dim": a.dim, "seed": 1},
           "dynamics": {"scheme": a.scheme, "kick_size": a.kick},
           "run": {"steps": a.steps + 5, "log_every": 100, "progress_seconds": 0.0, "stop_when_absorbed": False,
                   "step_kind": "dense"}}
    if a.skin is not None:
        cfg["run"]["skin"] = a.skin
    sim = Simulation.from_config(cfg, write=False, comm=SerialComm())
    sim.run(steps=5)                     # compilation and the first build
    build[0], r0 = 0.0, sim.rebuilds
    c0 = time.process_time()
    sim.run(steps=a.steps)
    cpu = time.process_time() - c0
    pass_us = None
    if a.pass_repeats and not sim.nlist.cell_pass:
        st, dyn, pairs = sim.state, sim.dynamics, sim.nlist.dense_pairs()
        n_rows = st.n_own + st.n_ghost
        acc, active = np.zeros_like(st.acc), np.zeros_like(st.active)
        counters = np.zeros_like(sim.counters)
        args = (dyn.params, dyn.potential, sim.seed, sim.step, st.pos, st.ids, st.radius, st.n_own, sim._kernel_box,
                pairs.first, pairs.second, pairs.n, acc, active, counters, True)
        kernel = sim._pair_kernels.pair_pass
        kernel(dyn.scheme, *args)
        c1 = time.process_time()
        for _ in range(a.pass_repeats):
            acc[:n_rows] = 0
            kernel(dyn.scheme, *args)
        pass_us = 1e6 * (time.process_time() - c1) / a.pass_repeats
    print(json.dumps({"dim": a.dim, "n": n, "phi": a.phi, "kick": a.kick, "box": float(sim.box[0]),
                      "cpu_ms_per_step": 1e3 * cpu / a.steps, "particle_steps_per_cpu_s": n * a.steps / cpu,
                      "build_share": build[0] / cpu, "pair_pass_us": pass_us, "rebuilds": sim.rebuilds - r0,
                      "pairs_per_particle": sim.nlist.pairs.n / n, "ghosts_per_particle": sim.state.n_ghost / n,
                      "skin": sim.nlist.skin, "cells": [int(c) for c in sim.nlist.cells.dims],
                      "activity": float(sim.observables["activity"][-1]), "load": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
