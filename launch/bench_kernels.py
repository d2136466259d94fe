"""Kernel timing (not a test): wall time of one pair_pass and one apply_step on the same state, minimum
over repeated calls, so that a change of a kernel or of the scheme dispatch can be compared before/after
on a shared machine (whole launch/bench runs vary more than the few percent in question).

    PYTHONPATH=TREE python launch/bench_kernels.py sgd --reps 30     # one JSON line

N = 1e5, phi = 0.6, d = 3, eps = 0.002 (alpha = 4 eps / 3, b_f = 3/4 as launch/bench; pgd: sigma 0.3,
c_t = -1/2, reciprocal), after 5 steps.
"""
import argparse
import json
import time

import numpy as np


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scheme", choices=["bro-pairwise", "sgd", "pgd"])
    p.add_argument("--reps", type=int, default=30)
    p.add_argument("--n", type=float, default=1e5)
    a = p.parse_args()
    from mpisim import Simulation
    from mpisim.core import kernels
    kick = 0.002
    dyn = {"bro-pairwise": {"kick_size": kick},
           "sgd": {"learning_rate": 4 * kick / 3, "batch_fraction": 0.75},
           "pgd": {"learning_rate": 4 * kick / 3, "noise_amplitude": 0.3, "temporal_correlation": -0.5,
                   "spatial_correlation": "reciprocal"}}[a.scheme]
    cfg = {"system": {"n": int(a.n), "phi": 0.6, "dim": 3, "seed": 1}, "dynamics": {"scheme": a.scheme, **dyn},
           "run": {"steps": 10, "progress_seconds": 0.0, "stop_when_absorbed": False}}
    sim = Simulation.from_config(cfg, write=False).run(steps=5)
    sim.compute()
    st, d, pairs = sim.state, sim.dynamics, sim.nlist.pairs
    n = st.n_own + st.n_ghost
    t_pair, t_apply = [], []
    for _ in range(a.reps):
        st.acc[:n] = 0
        st.active[:n] = 0
        sim.counters[:] = 0
        t0 = time.perf_counter()
        kernels.pair_pass(d.scheme, d.params, d.potential, sim.seed, sim.step, st.pos, st.ids, st.radius,
                          st.n_own, sim.box, pairs.first, pairs.second, pairs.n, st.acc, st.active, sim.counters,
                          False)
        t_pair.append(time.perf_counter() - t0)
        pos, img, aux, travel, acc = st.pos.copy(), st.image.copy(), st.aux.copy(), st.travel.copy(), st.acc.copy()
        t0 = time.perf_counter()
        kernels.apply_step(d.scheme, d.params, sim.seed, sim.step, 3, pos, img, st.ids, st.n_own, sim.box, acc,
                           st.active, aux, st.noise, travel, np.zeros(kernels.N_DISP, np.int64))
        t_apply.append(time.perf_counter() - t0)
    print(json.dumps({"scheme": a.scheme, "n": int(a.n), "pairs": int(pairs.n), "pair_pass_ms": 1e3 * min(t_pair),
                      "apply_step_ms": 1e3 * min(t_apply)}))


if __name__ == "__main__":
    main()
