"""Reproduce the hyperuniformity bar of the noise models (docs/algorithms.md, "pgd"): PGD with
anti-correlated temporal noise (c_t = -1/2) and reciprocal pair noise reaches S(k) ~ k^alpha with alpha
close to 2; the uncorrelated control (c_t = 0, independent) stays near alpha = 0.

    python -m studies.validation.hyperuniformity --dim 2 --n 20000 --steps 3000 [--figure out.png] [--json]
    mpirun -n 2 python -m studies.validation.hyperuniformity --dim 3 --n 160000 --steps 30000 --k-fit-max 0.4

Runs in-process on every rank of MPI_COMM_WORLD (one rank without mpirun; the trajectory is the same on
any rank count). Rank 0 prints one line per case, then alpha for other ends of the fit range.
"""
import argparse
import json
import sys
import time

import numpy as np

from analysis.hyperuniformity import (Hyperuniformity, default_k_fit_max, fit_shells, number_variance_lambda,
                                      plot_hyperuniformity)
from mpisim.parallel.comm import world
from mpisim.simulation import Simulation

from .frames import run_and_sample

# name -> (label, noise); the first two run by default, the other two say which anti-correlation matters
CASES = {
    "correlated": ("correlated (c_t = -1/2, reciprocal)",
                   {"temporal_correlation": -0.5, "spatial_correlation": "reciprocal"}),
    "uncorrelated": ("uncorrelated (c_t = 0, independent)",
                     {"temporal_correlation": 0.0, "spatial_correlation": "independent"}),
    "temporal": ("temporal only (c_t = -1/2, independent)",
                 {"temporal_correlation": -0.5, "spatial_correlation": "independent"}),
    "spatial": ("spatial only (c_t = 0, reciprocal)",
                {"temporal_correlation": 0.0, "spatial_correlation": "reciprocal"}),
}


def run_case(dim, n, phi, steps, frames, every, extra, seed, alpha_lr, sigma, k_fit_max, comm):
    cfg = {"system": {"n": n, "phi": phi, "dim": dim, "seed": seed},
           "dynamics": {"scheme": "pgd", "learning_rate": alpha_lr, "noise_amplitude": sigma, **extra},
           "run": {"steps": steps, "log_every": 100, "progress_seconds": 0, "stop_when_absorbed": True}}
    sim = Simulation.from_config(cfg, write=False, comm=comm)
    snaps = run_and_sample(sim, steps, frames, every)
    box = sim.box[:dim]
    hu = Hyperuniformity(k_fit_max=k_fit_max or default_k_fit_max(box)).compute(snaps, box)
    lam, lam_err = number_variance_lambda(snaps[-1:], box, n_windows=4000)
    energy = float(sim.observables["energy"][-1])
    return sim, hu, (lam, lam_err), energy, float(sim.observables["activity"][-1])


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m studies.validation.hyperuniformity",
                                description=__doc__.splitlines()[0])
    p.add_argument("--dim", type=int, default=2)
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--phi", type=float, default=None, help="default 0.5 (2d), 0.35 (3d)")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--frames", type=int, default=5, help="configurations averaged for S(k)")
    p.add_argument("--every", type=int, default=200, help="steps between averaged configurations")
    p.add_argument("--learning-rate", type=float, default=0.5)
    p.add_argument("--sigma", type=float, default=0.3)
    p.add_argument("--k-fit-max", type=float, default=None,
                   help="default 0.5, at least 4 x 2 pi / L")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--figure", help="write the S(k) figure here")
    p.add_argument("--json", action="store_true", help="print the results as one JSON line")
    p.add_argument("--only", default="correlated,uncorrelated",
                   help=f"comma-separated subset of {','.join(CASES)} (default: correlated,uncorrelated)")
    args = p.parse_args(argv)
    names = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = [c for c in names if c not in CASES]
    if unknown or not names:
        p.error(f"--only: unknown case(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(CASES)}")
    args.cases = names
    if args.phi is None:
        args.phi = 0.5 if args.dim == 2 else 0.35
    return args


def study(args, comm=None, say=lambda *a, **k: None):
    """{case label: results} (alpha, its fit range, lambda, energy, activity, ...) and {label:
    Hyperuniformity}; ``say`` prints a line per case (rank 0)."""
    comm = comm if comm is not None else world()
    phi = args.phi
    results, curves = {}, {}
    for label, extra in (CASES[c] for c in args.cases):
        t = time.time()
        sim, hu, (lam, lam_err), energy, act = run_case(args.dim, args.n, phi, args.steps, args.frames,
                                                        args.every, extra, args.seed, args.learning_rate,
                                                        args.sigma, args.k_fit_max, comm)
        kmin, kmax, npts = hu.fit_range
        ends = [x for x in (0.3, 0.4, 0.5, 0.6, 0.8, 1.0) if np.sum((hu.k >= kmin * (1 - 1e-9)) & (hu.k <= x)) >= 3]
        other = {x: fit_shells(hu.k, hu.S_k, hu.k_counts, kmin, x) for x in ends}
        results[label] = {"alpha": hu.alpha, "alpha_err": hu.alpha_err, "k_min": kmin, "k_max": kmax,
                          "shells": npts, "lambda": lam, "lambda_err": lam_err, "energy": energy,
                          "activity": act, "seconds": time.time() - t,
                          "alpha_by_k_max": {x: f[:2] for x, f in other.items()}}
        curves[label] = hu
        say(f"d={args.dim} N={args.n} phi={phi} steps={args.steps} {label}: alpha = {hu.alpha:.2f} +- "
            f"{hu.alpha_err:.2f} over k in [{kmin:.3f}, {kmax:.3f}] ({npts} shells); number variance "
            f"lambda = {lam:.2f} +- {lam_err:.2f}; activity {act:.3f}; energy {energy:.4g}; "
            f"{time.time() - t:.0f} s", flush=True)
        say("    alpha with other ends of the fit: " + "; ".join(
            f"k <= {x:g}: {f[0]:.2f} +- {f[1]:.2f} ({f[3]} shells)" for x, f in other.items()), flush=True)
    return results, curves


def main(argv=None):
    args = parse_args(argv)
    comm = world()
    say = print if comm.rank == 0 and not args.json else (lambda *a, **k: None)
    results, curves = study(args, comm, say)
    if args.figure and comm.rank == 0:
        plot_hyperuniformity(curves, args.figure, title=f"PGD, d = {args.dim}, N = {args.n}, phi = {args.phi}")
    if args.json and comm.rank == 0:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
