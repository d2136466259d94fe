#!/usr/bin/env python
"""Are the active runs near phi_c diffusing, or arrested? (issue 18: why f_inf jumps above phi_c)

For every run that did not absorb (files, directories or sweep manifests), over the second half of the
run (steps k_mid to k_end):

* ``f_last``: the mean activity f_a of the second half, and ``f_drift``: the mean of its last quarter
  minus that of its third quarter (a run still relaxing drifts down);
* ``msd_growth``: MSD(k_end) - MSD(k_mid), in diameters^2 (MSD from the run's start, the mean over all
  particles: analysis.msd's observable);
* ``free_growth``: what the second half would add if every active particle took independent steps of the
  run's effective kick size eps (alpha b_f for SGD and RCD; paper, after Eq. 6) with random signs:
  f_last * eps^2 / 3 * (k_end - k_mid) (a uniform magnitude in [0, eps] has mean square eps^2 / 3; a
  particle with several overlapping neighbours gets more, so this scale is low);
* ``mobility = msd_growth / free_growth``: ~1 if the active particles' steps add up as a random walk,
  << 1 if they cancel over time (particles that rattle in place: the configuration does not relax);
* ``rms_kicks = sqrt(msd_growth) / eps``: the same growth as a displacement in kick sizes.

    launch/arrest.py runs/fig5b/bro-pairwise-eps0.0125/*/manifest.tsv -o arrest.csv
    launch/arrest.py RUN_DIR ... --figure arrest.png     # f_a(k) and MSD(k) of the given runs
"""
import argparse
import sys
import warnings

import numpy as np

from analysis.io import load_runs, write_csv

FIELDS = ("scheme", "batch_fraction", "step_size", "n", "phi", "seed", "k_end", "f_last", "f_drift",
          "msd_growth", "free_growth", "mobility", "rms_kicks")


def arrest_row(run):
    """The row of one run that did not absorb (None for an absorbed one or one without an MSD series)."""
    if run.absorbed or "msd" not in run.observables:
        return None
    steps, f = run.activity()
    msd_steps, msd = run.observable("msd")
    k_end = int(steps[-1])
    half = steps >= k_end / 2
    if half.sum() < 4:
        return None
    k_mid = int(steps[half][0])
    tail = f[half]
    q = len(tail) // 2
    msd_growth = float(np.interp(k_end, msd_steps, msd) - np.interp(k_mid, msd_steps, msd))
    p = run.params
    eps = p.effective_kick
    free = float(tail.mean()) * eps ** 2 / 3.0 * (k_end - k_mid)
    return {"scheme": p.scheme, "batch_fraction": p.batch_fraction, "step_size": p.step_size, "n": p.n,
            "phi": p.phi, "seed": p.seed, "k_end": k_end, "f_last": float(tail.mean()),
            "f_drift": float(tail[q:].mean() - tail[:q].mean()), "msd_growth": msd_growth,
            "free_growth": free, "mobility": msd_growth / free if free > 0 else float("nan"),
            "rms_kicks": float(np.sqrt(max(msd_growth, 0.0))) / eps}


def draw(runs, path):
    """Two panels against the step (log axes): f_a(k) and MSD(k) - MSD(k_end / 2) of each run, one colour per
    run, labelled by eps, N, phi and seed."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(9, 3.6))
    ax_f, ax_m = fig.subplots(1, 2)
    for run in runs:
        p = run.params
        label = f"eps={p.effective_kick:g}, N={p.n}, phi={p.phi:g}, seed {p.seed}"
        steps, f = run.activity()
        ax_f.plot(steps[1:], f[1:], lw=0.8, label=label)
        msd_steps, msd = run.observable("msd")
        mid = np.interp(msd_steps[-1] / 2, msd_steps, msd)
        ax_m.plot(msd_steps[1:], msd[1:] - mid, lw=0.8)
    ax_f.set(xscale="log", xlabel="step k", ylabel="activity $f_a$")
    ax_m.set(xscale="log", xlabel="step k", ylabel=r"MSD(k) - MSD($k_{end}/2$) (diameters$^2$)")
    ax_f.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=150)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--continued", metavar="DIR", action="append",
                    help="continuations of the runs, read in place of their originals (as mpisim-analysis --continued)")
    ap.add_argument("-o", "--output", help="CSV of the rows (default: print only)")
    ap.add_argument("--figure", metavar="PNG", help="draw f_a(k) and MSD(k) of every given run that did not absorb")
    args = ap.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runs = load_runs(args.inputs, args.continued)
    rows = sorted((r for r in map(arrest_row, runs) if r is not None),
                  key=lambda r: (r["scheme"], str(r["batch_fraction"]), r["step_size"], r["n"], r["phi"],
                                 r["seed"] or 0))
    print("\t".join(FIELDS))
    for r in rows:
        print("\t".join(f"{r[k]:.4g}" if isinstance(r[k], float) else str(r[k]) for k in FIELDS))
    if args.figure:
        draw([r for r in runs if not r.absorbed], args.figure)
    if args.output:
        write_csv(args.output, rows, FIELDS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
