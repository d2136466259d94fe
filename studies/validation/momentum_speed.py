"""Instantaneous speed and anomalous diffusion of sgd with and without momentum (seed paper 002, Fig. 1;
docs/analysis.md, "Momentum: instantaneous speed and MSD exponent").

After a warm-up of --warmup steps into the active steady state, the run continues --steps steps. Reported
per momentum beta: the logged observable speed_squared = (1/N) sum_i |x_i(k) - x_i(k-1)|^2 (means over the
four quarters of the measurement window, and the drift last/first quarter), and the exponent c of the displacement
from the warmed-up configuration, MSD(k) = (1/N) sum_i |x_i(W + k) - x_i(W)|^2 ~ k^c (paper 002's
||Delta_k||^2), fitted by analysis.msd.DiffusionExponent over the last 2/3 of k (002 App. H) and over
[10, K].

    python -m studies.validation.momentum_speed --betas 0,0.9 [--json]

One rank, in-process.
"""
import argparse
import json
import sys
import time

import numpy as np

from analysis.msd import DiffusionExponent
from mpisim.simulation import Simulation


def run_beta(beta, args):
    cfg = {"system": {"n": args.n, "phi": args.phi, "dim": 2, "seed": args.seed, "radii": [0.5, 0.7]},
           "dynamics": {"scheme": "sgd", "learning_rate": args.learning_rate,
                        "batch_fraction": args.batch_fraction, "momentum": beta},
           "run": {"steps": args.warmup + args.steps, "log_every": args.log_every, "progress_seconds": 0,
                   "stop_when_absorbed": False}}
    sim = Simulation.from_config(cfg, write=False)
    sim.run(steps=args.warmup)

    def unwrapped():
        _, pos, img = sim.snapshot()
        return pos + img * sim.box[:2]
    x_w = unwrapped()
    ks = np.unique(np.geomspace(1, args.steps, 60).astype(int))
    msd, done = [], 0
    for k in ks:
        sim.run(steps=int(k - done))
        done = int(k)
        msd.append(float(((unwrapped() - x_w) ** 2).sum(axis=1).mean()))
    obs = sim.observables
    steps, v2, act = obs["step"], obs["speed_squared"], obs["activity"]
    window = v2[steps > args.warmup]
    quarters = [float(q.mean()) for q in np.array_split(window, 4)]
    c23 = DiffusionExponent().compute(ks, msd)
    cwide = DiffusionExponent(k_min=10, k_max=args.steps).compute(ks, msd)
    return {"speed_squared_quarters": quarters, "speed_squared_mean": float(window.mean()),
            "speed_squared_cv": float(window.std() / window.mean()),
            "drift": quarters[-1] / quarters[0] - 1.0,
            "c_last_two_thirds": c23.c, "c_last_two_thirds_err": c23.c_err,
            "c_10_to_K": cwide.c, "c_10_to_K_err": cwide.c_err,
            "msd_at_K": msd[-1], "activity": float(act[steps > args.warmup].mean())}


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m studies.validation.momentum_speed",
                                description=__doc__.splitlines()[0])
    p.add_argument("--betas", default="0,0.9", help="comma-separated momentum values")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--phi", type=float, default=0.85, help="active steady state for beta = 0 and 0.9")
    p.add_argument("--learning-rate", type=float, default=0.1)
    p.add_argument("--batch-fraction", type=float, default=0.5)
    p.add_argument("--warmup", type=int, default=3000)
    p.add_argument("--steps", type=int, default=10000)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    out = {}
    for b in (float(x) for x in args.betas.split(",")):
        t = time.time()
        out[b] = r = run_beta(b, args)
        r["seconds"] = time.time() - t
        if not args.json:
            qs = " ".join(f"{q:.3e}" for q in r["speed_squared_quarters"])
            print(f"beta={b}: speed_squared {r['speed_squared_mean']:.4e} (quarters {qs}: last/first "
                  f"{100 * r['drift']:+.1f}%; cv of the logged values {r['speed_squared_cv']:.3f}); "
                  f"c = {r['c_last_two_thirds']:.3f} +- {r['c_last_two_thirds_err']:.3f} (last 2/3), "
                  f"{r['c_10_to_K']:.3f} +- {r['c_10_to_K_err']:.3f} (k in [10, K]); MSD(K) {r['msd_at_K']:.3g}; "
                  f"activity {r['activity']:.3f}; {r['seconds']:.0f} s", flush=True)
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
