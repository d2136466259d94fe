#!/usr/bin/env python
"""The pilots that placed the phi grids and sized the issue-18 studies (docs/results.md, "Sizing").
In-process runs (mpisim.Simulation, no output file), one rank, JSON lines on stdout; CPU time is
time.process_time of this process.

    launch/pilot_study.py scan   [SCHEME]   Fig. 5b: phi = 0.50, 0.52, ... at N = 1000, 2e4 steps, seed 1,
                                            for each scheme and eps = 0.1 .. 0.0125 (b_f = 0.5, alpha = eps / b_f)
    launch/pilot_study.py scan3             Fig. 3 / S3: sgd b_f = 0.2, 1.0 and rcd b_f = 0.2 at alpha = 0.1, 4e4 steps
    launch/pilot_study.py timing            CPU ms per step in 1000-step segments, N = 1000, 4000, 8000 near
                                            phi_c, run.step_kind auto and dense, 8000 steps

Each scan stops at a (scheme, step) after two points still active with f_a > 0.3 at the end.
"""
import json
import os
import sys
import time

from mpisim import Simulation


def dynamics(scheme, eps, bf):
    if scheme.startswith("bro"):
        return {"scheme": scheme, "kick_size": eps}
    return {"scheme": scheme, "learning_rate": eps / bf, "batch_fraction": bf}


def simulation(scheme, eps, bf, n, phi, steps, kind="auto"):
    cfg = {"system": {"dim": 3, "n": n, "phi": phi, "seed": 1}, "dynamics": dynamics(scheme, eps, bf),
           "run": {"steps": steps, "log_every": 100, "progress_seconds": 0, "step_kind": kind}}
    sim = Simulation.from_config(cfg, write=False)
    sim.run(steps=1)                      # start-up and kernel compilation, not timed
    return sim


def scan(combos, phis, steps):
    for scheme, eps, bf in combos:
        deep = 0
        for phi in phis:
            sim = simulation(scheme, eps, bf, 1000, phi, steps)
            c0 = time.process_time()
            sim.run()
            cpu = time.process_time() - c0
            a = sim.history["activity"]
            print(json.dumps(dict(scheme=scheme, eps=eps, bf=bf, phi=phi, n=1000, steps=sim.step,
                                  absorbed=int(sim.absorbed_step), f_end=round(float(a[-1]), 4),
                                  f_mid=round(float(a[len(a) // 2]), 4),
                                  ms_per_step=round(cpu / max(sim.step, 1) * 1e3, 4),
                                  load=round(os.getloadavg()[0], 2))), flush=True)
            if sim.absorbed_step < 0 and a[-1] > 0.3:
                deep += 1
                if deep >= 2:
                    break


def timing():
    cases = [("bro-pairwise", 0.1, None, 0.5625), ("bro-pairwise", 0.0125, None, 0.63),
             ("sgd", 0.1, 0.5, 0.52), ("sgd", 0.0125, 0.5, 0.625), ("rcd", 0.0125, 0.5, 0.625)]
    steps, seg = 8000, 1000
    for scheme, eps, bf, phi in cases:
        for n in (1000, 4000, 8000):
            for kind in ("auto", "dense"):
                sim = simulation(scheme, eps, bf, n, phi, steps, kind)
                segs = []
                while sim.step < steps and sim.absorbed_step < 0:
                    c0, s0 = time.process_time(), sim.step
                    sim.run(steps=seg)
                    segs.append((sim.step, round(float(sim.history["activity"][-1]), 4),
                                 round((time.process_time() - c0) / max(sim.step - s0, 1) * 1e3, 4)))
                print(json.dumps(dict(scheme=scheme, eps=eps, bf=bf, phi=phi, n=n, kind=kind, segments=segs,
                                      load=round(os.getloadavg()[0], 2))), flush=True)


def main(argv):
    what = argv[0] if argv else ""
    if what == "scan":
        combos = [("bro-pairwise", e, None) for e in (0.05, 0.025, 0.0125)] + \
                 [(s, e, 0.5) for s in ("bro-individual", "sgd", "rcd") for e in (0.1, 0.05, 0.025, 0.0125)]
        if len(argv) > 1:
            combos = [c for c in combos if c[0] == argv[1]]
        scan(combos, (0.50, 0.52, 0.54, 0.56, 0.58, 0.60, 0.62, 0.64), 20000)
    elif what == "scan3":
        # alpha = 0.1: eps = alpha b_f
        scan([("sgd", 0.02, 0.2), ("sgd", 0.1, 1.0), ("rcd", 0.02, 0.2)], (0.52, 0.54, 0.56, 0.58, 0.60, 0.62), 40000)
    elif what == "timing":
        timing()
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
