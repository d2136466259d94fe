#!/usr/bin/env python
"""The study "A first look beyond d_c = 4" (issue 17; docs/results.md): phi_c and the activity exponent
beta of pairwise BRO in d = 4 and 5 from the runs of launch/examples/beyond-dc/*/ sweeps.

    launch/beyond_dc.py runs/beyond-dc/bro-pairwise-d4-eps0.1 ... -o docs/results/beyond-dc \\
        --figure docs/figures/beyond-dc.png

For each family directory (one d and eps; every manifest.tsv below it):

* the activity table (analysis.activity.ActivityTable, the defaults of ``python -m analysis activity``:
  unsteady points left out) -> ``OUT-activity.csv``;
* phi_c (analysis.critical.CriticalPoints, as ``python -m analysis phic``: the finite-size collapse of
  f_inf with the Manna exponents of analysis/fss.py, which are mean field for d >= 4: beta = 1,
  nu_perp = 1/2; the power law with beta = 1 for one size) and the absorption bracket -> ``OUT-phic.csv``;
* beta, several ways -> ``OUT-beta.csv``: (free) f_inf = A (phi - phi_c)^beta with A, beta and phi_c free, per
  N, to the active steady points with f_inf <= ``--f-max`` (default 0.7: f_a is a fraction of particles
  and saturates at 1, so the points far above phi_c bend the power law over; at least 4 points); (fixed)
  the slope of log f_inf against log(phi - phi_c) with phi_c the collapse value held fixed (points more
  than one error of phi_c above it, f_inf <= f_max). The fits' errors are the covariance of weighted
  least squares (scaled by sqrt(chi^2/dof) when above 1). And, from 3 points, beta held at 1 (mean
  field) and at 0.84 (Manna, d = 3) with A and phi_c free (analysis.fss.fit_phi_c_powerlaw): the phi_c
  each implies and the chi^2 per degree of freedom of each. And (bracket) the slope with phi_c held at
  phi_abs(N), the largest phi where every run of that N absorbed: the lowest phi_c these runs allow at that
  size, so the largest beta (a smaller phi_c spreads the same f_inf over a wider range of log(phi - phi_c)).
  A table with no rows (no fit had its points) is not written.

A directory that holds a manifest.tsv itself is one tier of the family named by its parent: give the tiers
to read, e.g. ``runs/beyond-dc/bro-pairwise-d4-eps0.1/coarse runs/beyond-dc/bro-pairwise-d4-eps0.1/n4000``
(to leave out a tier of shorter runs at the same N and phi, which would make those points unsteady, or of the
same seeds run shorter). ``--include-unsteady`` keeps the runs that are neither steady nor absorbed (their f
at the end of the run: an upper bound of f_inf where f_a still falls), as ``analysis activity
--include-unsteady``.

The figure: f_inf against phi (left) and against phi - phi_abs(N) on log axes (phi_abs(N): the largest phi
where every run of that N absorbed; no collapse value came out at these sizes) with the mean-field slope 1 and
the 3d Manna slope 0.84 (right), one colour per family, one marker per N.
"""
import argparse
import csv
import glob
import math
import os
import sys

import numpy as np
import scipy.optimize


def _emit(rows, path):
    if not rows:  # a file holding only a newline would read as a table with no columns
        print(f"{path}: no rows, not written", file=sys.stderr)
        return
    cols = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def _scaled_cov(cov, chi2, dof):
    return cov * max(1.0, chi2 / dof) if dof > 0 else cov


def fit_free(phi, f, df):
    """(beta, dbeta, phi_c, dphi_c, chi2, dof) of f = A (phi - phi_c)^beta, all free."""
    def model(x, a, beta, pc):
        return a * np.clip(x - pc, 1e-12, None) ** beta
    p0 = (f.max() / (phi.max() - phi.min() + 0.01), 1.0, phi.min() - 0.01)
    bounds = ([0, 0.1, phi.min() - 0.2], [np.inf, 5.0, phi.min() - 1e-9])
    p, cov = scipy.optimize.curve_fit(model, phi, f, p0=p0, sigma=df, absolute_sigma=True, bounds=bounds,
                                      maxfev=20000)
    chi2 = float(np.sum(((f - model(phi, *p)) / df) ** 2))
    dof = len(phi) - 3
    cov = _scaled_cov(cov, chi2, dof)
    return p[1], math.sqrt(cov[1, 1]), p[2], math.sqrt(cov[2, 2]), chi2, dof


def fit_fixed(phi, f, df, phi_c):
    """(beta, dbeta, chi2, dof) of log f = log A + beta log(phi - phi_c), phi_c fixed."""
    x, y, dy = np.log(phi - phi_c), np.log(f), df / f
    coef, cov = np.polyfit(x, y, 1, w=1 / dy, cov="unscaled")
    chi2 = float(np.sum(((y - np.polyval(coef, x)) / dy) ** 2))
    dof = len(x) - 2
    cov = _scaled_cov(cov, chi2, dof)
    return coef[0], math.sqrt(cov[0, 0]), chi2, dof


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("families", nargs="+",
                   help="family directories (every manifest.tsv below each), or tier directories (one manifest.tsv)")
    p.add_argument("-o", "--output", required=True, help="prefix of the CSV files")
    p.add_argument("--figure", help="PNG of f_inf against phi and phi - phi_c")
    p.add_argument("--bootstrap", type=int, default=100, help="seed resamplings for phi_c's error")
    p.add_argument("--f-max", type=float, default=0.7, help="largest f_inf in the beta fits")
    p.add_argument("--include-unsteady", action="store_true",
                   help="keep runs neither steady nor absorbed (f at their end: an upper bound where f_a falls)")
    a = p.parse_args()
    from analysis.activity import ActivityTable
    from analysis.critical import CriticalPoints
    from analysis.fss import absorption_bracket, fit_phi_c_powerlaw
    from analysis.io import load_runs

    act_rows, phic_rows, beta_rows, plot = [], [], [], []
    families = {}                                     # family directory -> its manifests, in argument order
    for d in a.families:
        d = os.path.normpath(d)
        if os.path.isfile(os.path.join(d, "manifest.tsv")):
            families.setdefault(os.path.dirname(d), []).append(os.path.join(d, "manifest.tsv"))
        else:
            families.setdefault(d, []).extend(sorted(glob.glob(os.path.join(d, "**", "manifest.tsv"), recursive=True)))
    for fam, manifests in families.items():
        if not manifests:
            sys.exit(f"beyond_dc: no manifest.tsv under {fam}")
        runs = load_runs(manifests)
        table = ActivityTable(include_unsteady=a.include_unsteady).compute(runs)
        rows = table.rows
        name = "/".join(os.path.normpath(fam).split(os.sep)[-2:]).replace("beyond-dc/", "")
        act_rows += [{"family": name, **r} for r in rows]
        if table.exclusion_note:
            print(f"{name}: {table.exclusion_note}", file=sys.stderr)
        cp = CriticalPoints(n_bootstrap=a.bootstrap).compute(rows, table.per_run)
        point = cp.points[0]
        phic_rows.append({"family": name, **point})
        dim = int(rows[0]["dim"])
        # phi_c for the fixed-phi_c fit: a collapse value only (the one-size power-law fallback assumes beta)
        phi_c, dphi_c = ((point["phi_c"], point["phi_c_err"]) if point["method"] == "collapse"
                         else (math.nan, math.nan))
        print(f"{name}: d = {dim}, phi_c = {phi_c:.5g} +- {dphi_c:.2g} ({point['method']}, {point['status']} "
              f"{point['phi_c_bound']}), bracket [{point['phi_all_absorbed']}, {point['phi_none_absorbed']}]",
              file=sys.stderr)
        for n in sorted({int(r["n"]) for r in rows}):
            sel = [r for r in rows if int(r["n"]) == n and np.isfinite(r["f_inf"]) and r["f_inf"] > 0]
            phi = np.array([r["phi"] for r in sel])
            f = np.array([r["f_inf"] for r in sel])
            df = np.array([max(r["f_inf_err"], 0.01 * r["f_inf"]) if np.isfinite(r["f_inf_err"])
                           else 0.01 * r["f_inf"] for r in sel])
            # this size's bracket: the largest phi where every run of this N absorbed
            phi_abs_n = absorption_bracket([r for r in rows if int(r["n"]) == n])["phi_all_absorbed"]
            plot.append((name, dim, n, phi, f, df, phi_abs_n))
            base = {"family": name, "dim": dim, "n": n, "f_max": a.f_max}
            small = f <= a.f_max
            phi, f, df = phi[small], f[small], df[small]
            for beta0, label in ((1.0, "beta = 1 fixed (mean field)"), (0.84, "beta = 0.84 fixed (Manna d = 3)")):
                if len(phi) >= 3:
                    pc, dpc, amp = fit_phi_c_powerlaw(phi, f, df, beta0)
                    model = amp * np.clip(phi - pc, 0, None) ** beta0
                    chi2 = float(np.sum(((f - model) / df) ** 2))
                    beta_rows.append({**base, "method": label, "beta": beta0, "beta_err": 0.0, "phi_c": pc,
                                      "phi_c_err": dpc, "n_points": len(phi), "phi_lo": phi.min(),
                                      "phi_hi": phi.max(), "chi2_per_dof": chi2 / max(len(phi) - 2, 1)})
            if len(phi) >= 4:
                try:
                    b, db, pc, dpc, chi2, dof = fit_free(phi, f, df)
                    beta_rows.append({**base, "method": "free (A, beta, phi_c)", "beta": b, "beta_err": db,
                                      "phi_c": pc, "phi_c_err": dpc, "n_points": len(phi),
                                      "phi_lo": phi.min(), "phi_hi": phi.max(), "chi2_per_dof": chi2 / max(dof, 1)})
                except (RuntimeError, ValueError) as err:
                    print(f"{name} N = {n}: free fit failed: {err}", file=sys.stderr)
            above = phi > phi_abs_n
            if np.isfinite(phi_abs_n) and above.sum() >= 3:
                b, db, chi2, dof = fit_fixed(phi[above], f[above], df[above], phi_abs_n)
                beta_rows.append({**base, "method": "phi_c = phi_abs(N) fixed (largest beta of the bracket)",
                                  "beta": b, "beta_err": db, "phi_c": phi_abs_n, "phi_c_err": 0.0,
                                  "n_points": int(above.sum()), "phi_lo": phi[above].min(),
                                  "phi_hi": phi[above].max(), "chi2_per_dof": chi2 / max(dof, 1)})
            if np.isfinite(phi_c):
                above = phi > phi_c + (dphi_c if np.isfinite(dphi_c) else 0.0)
                if above.sum() >= 3:
                    b, db, chi2, dof = fit_fixed(phi[above], f[above], df[above], phi_c)
                    beta_rows.append({**base, "method": "phi_c fixed (collapse)", "beta": b, "beta_err": db,
                                      "phi_c": phi_c, "phi_c_err": dphi_c, "n_points": int(above.sum()),
                                      "phi_lo": phi[above].min(), "phi_hi": phi[above].max(),
                                      "chi2_per_dof": chi2 / max(dof, 1)})
    _emit(act_rows, a.output + "-activity.csv")
    _emit(phic_rows, a.output + "-phic.csv")
    _emit(beta_rows, a.output + "-beta.csv")
    for r in beta_rows:
        print(f"{r['family']} N = {r['n']}: beta = {r['beta']:.3f} +- {r['beta_err']:.3f}, phi_c = {r['phi_c']:.5f} "
              f"+- {r['phi_c_err']:.5f} ({r['method']}, {r['n_points']} points, phi {r['phi_lo']:.4g}-{r['phi_hi']:.4g}, "
              f"chi2/dof {r['chi2_per_dof']:.2f})")
    if a.figure:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(1, 2, figsize=(11, 4.2))
        names = list(dict.fromkeys(x[0] for x in plot))
        colours = {nm: f"C{i}" for i, nm in enumerate(names)}
        markers = dict(zip(sorted({x[2] for x in plot}), "osD^v"))
        for name, dim, n, phi, f, df, phi_abs in plot:
            kw = dict(color=colours[name], marker=markers[n], ls="-", ms=4, capsize=2)
            ax[0].errorbar(phi, f, df, label=f"{name}, N={n}", **kw)
            if np.isfinite(phi_abs) and (phi > phi_abs).any():
                m = phi > phi_abs
                # on log axes an error bar down to f = 0 would stretch the axis by decades: clip it at f / 10
                ax[1].errorbar(phi[m] - phi_abs, f[m], [np.minimum(df[m], 0.9 * f[m]), df[m]], **kw)
        x = np.array([2e-3, 1e-1])
        ax[1].plot(x, 12 * x, "k--", lw=1, label="slope 1 (mean field)")
        ax[1].plot(x, 6 * x ** 0.84, "k:", lw=1, label="slope 0.84 (Manna d = 3)")
        ax[1].set(xscale="log", yscale="log", xlabel=r"$\phi-\phi_{abs}(N)$ ($\phi_{abs}(N)$: largest $\phi$ where every run of that $N$ absorbed)", ylabel=r"$f_\infty$")
        ax[0].set(xlabel=r"$\phi$", ylabel=r"$f_\infty$" + ("" if a.include_unsteady else " (steady points)"))
        ax[0].axhline(a.f_max, color="0.6", lw=0.8, ls=":")
        ax[0].legend(fontsize=7, loc="upper left")
        ax[1].legend(fontsize=7, loc="lower right")
        fig.suptitle("pairwise BRO beyond d_c = 4: steady activity " + (
            "(unsteady runs kept: their f at the end, an upper bound where f_a falls)" if a.include_unsteady
            else "(unsteady points left out)"), fontsize=10)
        fig.tight_layout()
        fig.savefig(a.figure, dpi=120)
        print(a.figure)


if __name__ == "__main__":
    main()
