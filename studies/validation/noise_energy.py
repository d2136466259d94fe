"""Final energy per scheme at equal work (docs/algorithms.md, "Measured: final energy per noise model"):
the companion study's claim (paper 004) that temporally correlated noise reaches better minima.

Every scheme runs the same number of steps with the same learning rate from the same initial positions
(one per seed: system.init_seed); the dynamics' own draws are keyed by system.seed. Bidisperse discs
(radii 0.5 and 0.7, equal numbers), harmonic potential, above jamming. Reported per scheme: the energy per
particle V/N at the last step, and after a noise-free gd quench of --quench steps from that configuration
(the energy of the basin reached), mean +- standard error over seeds.

    python -m studies.validation.noise_energy --n 3000 --steps 5000 --seeds 4 [--json]

One rank, in-process (the engine is bit-identical on any rank count).
"""
import argparse
import json
import sys
import time

from analysis.hyperuniformity import energy_per_scheme
from mpisim.simulation import Simulation


def cases(rate, sigma, batch):
    """{label: dynamics table}; langevin's T = sigma^2 / (2 alpha) gives a kick of std sigma, as pgd's."""
    pgd = {"scheme": "pgd", "noise_amplitude": sigma}
    return {
        "gd": {"scheme": "gd"},
        "sgd": {"scheme": "sgd", "batch_fraction": batch},
        "pgd c_t=-0.5 reciprocal": {**pgd, "temporal_correlation": -0.5, "spatial_correlation": "reciprocal"},
        "pgd c_t=-0.5 independent": {**pgd, "temporal_correlation": -0.5, "spatial_correlation": "independent"},
        "pgd c_t=0 independent": {**pgd, "temporal_correlation": 0.0, "spatial_correlation": "independent"},
        "pgd c_t=0 reciprocal": {**pgd, "temporal_correlation": 0.0, "spatial_correlation": "reciprocal"},
        "spgd c_t=-0.5 reciprocal": {"scheme": "spgd", "noise_amplitude": sigma, "batch_fraction": batch,
                                     "temporal_correlation": -0.5, "spatial_correlation": "reciprocal"},
        "langevin": {"scheme": "langevin", "temperature": sigma ** 2 / (2.0 * rate)},
    }


def run_one(dynamics, n, phi, steps, quench, rate, seed):
    """(V/N at the last step, V/N after the gd quench) of one run."""
    system = {"n": n, "phi": phi, "dim": 2, "seed": seed, "init_seed": 1000 + seed, "radii": [0.5, 0.7]}
    run = {"steps": steps, "log_every": steps, "progress_seconds": 0, "stop_when_absorbed": False}
    sim = Simulation.from_config({"system": system, "run": run,
                                  "dynamics": {**dynamics, "learning_rate": rate, "potential": "harmonic"}},
                                 write=False).run()
    final = float(sim.observables["energy"][-1]) / n
    if quench <= 0:
        return final, float("nan")
    _, pos, _ = sim.snapshot()
    q = Simulation.from_config({"system": system, "run": {**run, "steps": quench, "log_every": quench},
                                "dynamics": {"scheme": "gd", "learning_rate": rate, "potential": "harmonic"}},
                               write=False)
    q.set_positions(pos)        # same radii: the same system table
    q.run()
    return final, float(q.observables["energy"][-1]) / n


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m studies.validation.noise_energy",
                                description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--phi", type=float, default=0.9, help="packing fraction (2d bidisperse jams near 0.84)")
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--quench", type=int, default=1000, help="gd steps after the run (0: none)")
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--learning-rate", type=float, default=0.1)
    p.add_argument("--sigma", type=float, default=0.01, help="noise amplitude of pgd/spgd (langevin: same kick)")
    p.add_argument("--batch-fraction", type=float, default=0.5, help="b_f of sgd and spgd")
    p.add_argument("--only", help="comma-separated subset of the case labels")
    p.add_argument("--json", action="store_true", help="print the results as one JSON line")
    args = p.parse_args(argv)
    table = cases(args.learning_rate, args.sigma, args.batch_fraction)
    if args.only:
        wanted = [s.strip() for s in args.only.split(",")]
        bad = [w for w in wanted if w not in table]
        if bad:
            p.error(f"--only: unknown case(s) {bad}; allowed: {', '.join(table)}")
        table = {k: table[k] for k in wanted}
    args.table = table
    return args


def study(args, say=lambda *a, **k: None):
    """{case label: {"final": (mean, error), "quenched": (mean, error), "seeds", "seconds"}}."""
    finals, quenched, seconds = [], [], {}
    for label, dyn in args.table.items():
        t = time.time()
        for s in range(args.seeds):
            e, eq = run_one(dyn, args.n, args.phi, args.steps, args.quench, args.learning_rate, s)
            finals.append((label, e))
            quenched.append((label, eq))
        seconds[label] = time.time() - t
        say(f"{label}: done in {seconds[label]:.0f} s", file=sys.stderr, flush=True)
    fin, que = energy_per_scheme(finals), energy_per_scheme(quenched)
    return {label: {"final": fin[label][:2], "quenched": que[label][:2], "seeds": fin[label][2],
                    "seconds": seconds[label]} for label in args.table}


def main(argv=None):
    args = parse_args(argv)
    results = study(args, say=(lambda *a, **k: None) if args.json else print)
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"2d bidisperse N={args.n} phi={args.phi} harmonic, alpha={args.learning_rate}, {args.steps} steps, "
          f"sigma={args.sigma}, b_f={args.batch_fraction}, {args.seeds} seeds, gd quench {args.quench} steps")
    print("| scheme | V/N at the last step | V/N after the gd quench |")
    print("|---|---|---|")
    for label, r in results.items():
        (m, e), (mq, eq) = r["final"], r["quenched"]
        print(f"| {label} | {m:.4e} +- {e:.1e} | {mq:.4e} +- {eq:.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
