"""Pair-noise correlation and long-range structure (issue 17 c; docs/results.md, "Pair-noise correlation
and long-range structure"): correlated pairwise BRO (``bro-correlated``) in its active phase for a range of
pair correlations c from independent (0) to reciprocal (1) kicks, in 2d and 3d. For each c: the
frame-averaged S(k) on the shells of equal |k|, its small-k value S0 from the fit S(k) = S0 + B k^2 over
k <= k_fit (the form of the fluctuating-hydrodynamic argument: pair kicks that do not keep the pair's
centre of mass add a density noise ~ (1 - c) k^2 next to the reciprocal one ~ k^4, so S(k -> 0) ~ (1 - c)),
the exponent alpha of S ~ k^alpha over the same shells, and the number-variance exponent lambda.

    python -m studies.validation.pair_correlation --out docs/figures/pair-correlation   # both dimensions
    python -m studies.validation.pair_correlation --dims 2 --n2 5000 --steps2 2000      # a quick look
    python -m studies.validation.pair_correlation --out OUT --reanalyse --k-fit 0.4     # refit, no runs

Serial, in-process, one run after another (the trajectory does not depend on the rank count). Writes
OUT.csv (one row per run), OUT-sk.csv (the S(k) curves) and OUT.png, and prints one line per run with its
CPU time.
"""
import argparse
import csv
import sys
import time

import numpy as np

from analysis.hyperuniformity import Hyperuniformity, fit_plateau, fit_shells, number_variance_lambda
from mpisim.simulation import Simulation

from .frames import run_and_sample

CORRELATIONS = (0.0, 0.5, 0.8, 0.9, 0.95, 1.0)
# dim -> (N, phi, steps): active phase at eps = 0.3 (f_a about 0.6 in 2d, 0.8 in 3d)
SIZES = {2: (20000, 0.70, 10000), 3: (30000, 0.45, 6000)}
FIELDS = ("dim", "c", "n", "phi", "eps", "steps", "frames", "L", "activity", "S_first", "k_first", "S0",
          "S0_err", "B", "alpha", "alpha_err", "k_fit", "lambda", "lambda_err", "cpu_s")


def small_k(curve, k_fit):
    """{S_first, k_first, S0, S0_err, B, alpha, alpha_err} of one S(k) curve (k, S, S_err, counts)."""
    k, sk, _, counts = curve
    s0, s0_err, b = fit_plateau(k, sk, counts, k_fit)
    alpha, alpha_err, _, _ = fit_shells(k, sk, counts, k[0], k_fit)
    return {"S_first": float(sk[0]), "k_first": float(k[0]), "S0": s0, "S0_err": s0_err, "B": b,
            "alpha": float(alpha), "alpha_err": float(alpha_err), "k_fit": k_fit}


def run_case(dim, c, n, phi, steps, eps, frames, every, k_fit, seed):
    cfg = {"system": {"n": n, "phi": phi, "dim": dim, "seed": seed},
           "dynamics": {"scheme": "bro-correlated", "kick_size": eps, "pair_correlation": c},
           "run": {"steps": steps, "log_every": 100, "progress_seconds": 0, "stop_when_absorbed": True}}
    t0 = time.process_time()
    sim = Simulation.from_config(cfg, write=False)
    snaps = run_and_sample(sim, steps, frames, every)
    box = sim.box[:dim]
    hu = Hyperuniformity(k_fit_max=k_fit, k_max=2.0).compute(snaps, box)
    curve = (hu.k, hu.S_k, hu.S_k_err, hu.k_counts)
    lam, lam_err = number_variance_lambda(snaps[-1:], box, n_windows=4000)
    row = {"dim": dim, "c": c, "n": n, "phi": phi, "eps": eps, "steps": sim.step, "frames": len(snaps),
           "L": float(box.min()), "activity": float(sim.observables["activity"][-1]), **small_k(curve, k_fit),
           "lambda": float(lam), "lambda_err": float(lam_err), "cpu_s": time.process_time() - t0}
    return row, curve


def figure(rows, curves, path):
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter
    dims = sorted({r["dim"] for r in rows})
    fig = Figure(figsize=(4.2 * len(dims), 7.2))
    axes = fig.subplots(2, len(dims), squeeze=False)
    for col, dim in enumerate(dims):
        ax = axes[0, col]
        for c, (k, sk, _, _) in sorted(curves[dim].items()):
            ok = sk > 0
            ax.plot(k[ok], sk[ok], ".-", ms=3, lw=0.7, label=f"c = {c:g}")
        k_ref, s_ref, _, _ = curves[dim][max(curves[dim])]     # a k^2 line through the largest c at k ~ 0.5
        at = np.argmin(np.abs(k_ref - 0.5))
        k = np.geomspace(k_ref[0], 1.0, 10)
        ax.plot(k, s_ref[at] * (k / k_ref[at]) ** 2, "k:", lw=0.8, label=r"$\propto k^2$")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(r"$k$ (1/diameter)")
        ax.set_ylabel(r"$S(k)$")
        ax.set_title(f"bro-correlated, {dim}d")
        ax.legend(fontsize=7)
        ax = axes[1, col]
        sel = [r for r in rows if r["dim"] == dim]
        one_minus_c = np.array([1 - r["c"] for r in sel])
        ax.errorbar(one_minus_c, [r["S0"] for r in sel], yerr=[r["S0_err"] for r in sel], fmt="o-", ms=4,
                    label=r"$S_0$ of $S = S_0 + B k^2$")
        ax.plot(one_minus_c, [r["S_first"] for r in sel], "s--", ms=4, label=r"$S(k_{min})$")
        ax.set_xlabel(r"$1 - c$ (0: reciprocal, 1: independent kicks)")
        ax.set_ylabel("small-k structure factor")
        ax.axhline(0, color="0.6", lw=0.6)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    return path


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m studies.validation.pair_correlation",
                                description=__doc__.splitlines()[0])
    p.add_argument("--dims", default="2,3")
    p.add_argument("--correlations", default=",".join(f"{c:g}" for c in CORRELATIONS))
    for d, (n, phi, steps) in SIZES.items():
        p.add_argument(f"--n{d}", type=int, default=n)
        p.add_argument(f"--phi{d}", type=float, default=phi)
        p.add_argument(f"--steps{d}", type=int, default=steps)
    p.add_argument("--eps", type=float, default=0.3)
    p.add_argument("--frames", type=int, default=10)
    p.add_argument("--every", type=int, default=200)
    p.add_argument("--k-fit", type=float, default=0.6, help="largest |k| of the S0 + B k^2 and alpha fits")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="pair-correlation", help="OUT.csv, OUT-sk.csv, OUT.png")
    p.add_argument("--reanalyse", action="store_true",
                   help="no runs: refit OUT-sk.csv with --k-fit, rewrite OUT.csv's fit columns and OUT.png")
    return p.parse_args(argv)


def read_curves(path):
    """{dim: {c: (k, S, S_err, counts)}} from an OUT-sk.csv."""
    out = {}
    with open(path) as f:
        for r in csv.DictReader(f):
            out.setdefault(int(r["dim"]), {}).setdefault(float(r["c"]), []).append(
                (float(r["k"]), float(r["S"]), float(r["S_err"]), int(r["n_k"])))
    return {d: {c: tuple(np.array(col) for col in zip(*rows)) for c, rows in by_c.items()}
            for d, by_c in out.items()}


def write_rows(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def reanalyse(args):
    curves = read_curves(f"{args.out}-sk.csv")
    with open(f"{args.out}.csv") as f:
        rows = [dict(r) for r in csv.DictReader(f)]
    for r in rows:
        for key in FIELDS:
            if key not in ("dim",):
                r[key] = float(r[key])
        r["dim"] = int(r["dim"])
        r.update(small_k(curves[r["dim"]][r["c"]], args.k_fit))
    write_rows(f"{args.out}.csv", rows)
    figure(rows, curves, f"{args.out}.png")
    for r in rows:
        print(f"d={r['dim']} c={r['c']:g} S(k_min)={r['S_first']:.4f} S0={r['S0']:.4f}+-{r['S0_err']:.4f} "
              f"alpha={r['alpha']:.2f}+-{r['alpha_err']:.2f} (k <= {args.k_fit})")
    return 0


def main(argv=None):
    args = parse_args(argv)
    if args.reanalyse:
        return reanalyse(args)
    rows, curves = [], {}
    for dim in (int(d) for d in args.dims.split(",")):
        curves[dim] = {}
        n, phi, steps = getattr(args, f"n{dim}"), getattr(args, f"phi{dim}"), getattr(args, f"steps{dim}")
        for c in (float(x) for x in args.correlations.split(",")):
            row, curve = run_case(dim, c, n, phi, steps, args.eps, args.frames, args.every, args.k_fit,
                                  args.seed)
            rows.append(row)
            curves[dim][c] = curve
            print(f"d={dim} c={c:g} N={n} phi={phi} steps={row['steps']} f_a={row['activity']:.3f} "
                  f"S(k_min={row['k_first']:.3f})={row['S_first']:.4f} S0={row['S0']:.4f}+-{row['S0_err']:.4f} "
                  f"alpha={row['alpha']:.2f}+-{row['alpha_err']:.2f} lambda={row['lambda']:.2f} "
                  f"cpu={row['cpu_s']:.0f}s", flush=True)
    write_rows(f"{args.out}.csv", rows)
    with open(f"{args.out}-sk.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["dim", "c", "k", "S", "S_err", "n_k"])
        for dim, by_c in curves.items():
            for c, (ks, ss, es, ms) in by_c.items():
                for k, s, e, m in zip(ks, ss, es, ms):
                    w.writerow([dim, f"{c:g}", f"{k:.6g}", f"{s:.6g}", f"{e:.3g}", int(m)])
    figure(rows, curves, f"{args.out}.png")
    print(f"wrote {args.out}.csv, {args.out}-sk.csv, {args.out}.png; total CPU "
          f"{sum(r['cpu_s'] for r in rows):.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
