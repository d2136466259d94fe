#!/usr/bin/env python
"""Fig. 5b of every scheme from its absorption brackets: phi_c against the kick size, and phi_c(eps -> 0).

Reads the tables of ``mpisim-analysis phic`` (one or more CSVs; columns scheme, batch_fraction,
step_size, phi_all_absorbed, phi_none_absorbed, sizes), so that schemes run in different sessions (whose
run files are gone) meet in one figure. The step of SGD and RCD is the learning rate alpha; it is
drawn at eps = alpha b_f, the kick size the paper maps it to (paper 000, after Eq. 6). Per scheme: the
bracket at each eps (every seed of every N absorbed at its lower end, none at its upper end), and at
eps = 0 the range of phi_c(0) over every line through all of that scheme's brackets (thick) and over
every power eps^a (thin; :func:`analysis.critical.extrapolate_brackets`); "sqrt" is reported in the
CSV. The last CSV row ("all") is the intersection of the schemes' ranges: the phi_c(0) that one value
common to every scheme can take.

    launch/fig5b_brackets.py docs/results/fig5b-{bro-pairwise-phic4,bro-individual-phic,sgd-phic,rcd-phic}.csv \\
        -o docs/results/fig5b-brackets.csv --figure docs/figures/fig5b-brackets.png
"""
import argparse
import csv
import math
import sys

import numpy as np

from analysis.critical import PHI_RCP, extrapolate_brackets
from analysis.errors import CollapseError
from analysis.io import cell_number, effective_kick_of_row

FORMS = ("linear", "sqrt", "power")
FIELDS = ("scheme", "batch_fraction", "n_brackets", "eps", "lo", "hi") + tuple(
    f"{form}_{x}" for form in FORMS for x in ("phi_c0_lo", "phi_c0_hi", "exponent_lo", "exponent_hi")) + (
    "linear_contains_0.64",)


def read_brackets(paths):
    """``{(scheme, batch_fraction): [(eps, lo, hi), ...]}`` sorted by eps, from phic CSVs."""
    out = {}
    for path in paths:
        with open(path, newline="") as fh:
            for r in csv.DictReader(fh):
                eps = effective_kick_of_row(r)      # the BRO-equivalent kick size
                lo, hi = cell_number(r["phi_all_absorbed"]), cell_number(r["phi_none_absorbed"])
                out.setdefault((r["scheme"], r["batch_fraction"]), []).append((eps, lo, hi))
    return {k: sorted(v) for k, v in out.items()}


def extrapolate(brackets):
    """One row per scheme (FIELDS) and the intersection of the linear ranges ("all")."""
    rows = []
    for (scheme, b_f), pts in brackets.items():
        eps, lo, hi = (np.array(c) for c in zip(*pts))
        row = {"scheme": scheme, "batch_fraction": b_f, "n_brackets": len(pts),
               "eps": " ".join(f"{e:g}" for e in eps), "lo": " ".join(f"{x:g}" for x in lo),
               "hi": " ".join(f"{x:g}" for x in hi)}
        for form in FORMS:
            try:
                e = extrapolate_brackets(eps, lo, hi, form)
                vals = (e.phi_c0_lo, e.phi_c0_hi, e.exponent_lo, e.exponent_hi)
            except CollapseError:
                vals = (math.nan,) * 4
            row.update(zip((f"{form}_{x}" for x in ("phi_c0_lo", "phi_c0_hi", "exponent_lo", "exponent_hi")),
                           vals))
        row["linear_contains_0.64"] = bool(row["linear_phi_c0_lo"] <= PHI_RCP <= row["linear_phi_c0_hi"])
        rows.append(row)
    if rows:
        both = {"scheme": "all", "batch_fraction": "", "n_brackets": sum(r["n_brackets"] for r in rows)}
        for form in FORMS:
            lo = max(r[f"{form}_phi_c0_lo"] for r in rows)
            hi = min(r[f"{form}_phi_c0_hi"] for r in rows)
            both[f"{form}_phi_c0_lo"], both[f"{form}_phi_c0_hi"] = (lo, hi) if lo <= hi else (math.nan, math.nan)
        both["linear_contains_0.64"] = bool(both["linear_phi_c0_lo"] <= PHI_RCP <= both["linear_phi_c0_hi"])
        rows.append(both)
    return rows


def draw(brackets, rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.6), constrained_layout=True)
    ax.axhspan(PHI_RCP - 0.01, PHI_RCP + 0.01, color="0.9", zorder=0, label="0.64 +- 0.01 (issue 18's goal)")
    ax.axhline(PHI_RCP, color="0.6", lw=0.8, zorder=0)
    by_scheme = {r["scheme"]: r for r in rows}
    keys = list(brackets)
    for k, key in enumerate(keys):
        scheme = key[0]
        color = f"C{k}"
        shift = (k - (len(keys) - 1) / 2) * 0.0012
        for j, (eps, lo, hi) in enumerate(brackets[key]):
            ax.plot([eps + shift] * 2, [lo, hi], color=color, lw=5, alpha=0.7, solid_capstyle="butt",
                    label=scheme if j == 0 else None)
        r = by_scheme[scheme]
        x0 = -0.006 + shift
        ax.plot([x0] * 2, [r["power_phi_c0_lo"], r["power_phi_c0_hi"]], color=color, lw=1.2)
        ax.plot([x0] * 2, [r["linear_phi_c0_lo"], r["linear_phi_c0_hi"]], color=color, lw=5,
                solid_capstyle="butt")
    common = by_scheme.get("all")
    if common and math.isfinite(common["linear_phi_c0_lo"]):
        ax.axhspan(common["linear_phi_c0_lo"], common["linear_phi_c0_hi"], xmin=0, xmax=0.08, color="k",
                   alpha=0.25, label=f"common to all, linear: [{common['linear_phi_c0_lo']:.4f}, "
                                     f"{common['linear_phi_c0_hi']:.4f}]")
    ax.axvline(0, color="k", lw=0.6)
    ax.set_xlim(-0.0125, max(e for v in brackets.values() for e, _, _ in v) + 0.0115)
    ax.set_xlabel(r"kick size $\epsilon$ ($\alpha b_f$ for SGD, RCD)")
    ax.set_ylabel(r"$\phi_c$: absorption bracket; at $\epsilon = 0$: $\phi_c(0)$ of the lines (thick), powers (thin)")
    ax.yaxis.label.set_size(8)
    ax.legend(fontsize=7, loc="lower left")
    fig.savefig(path, dpi=150)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tables", nargs="+", help="CSVs of mpisim-analysis phic")
    ap.add_argument("-o", "--output", help="CSV of the extrapolations (default: stdout)")
    ap.add_argument("--figure", help="PNG of the brackets and the phi_c(0) ranges")
    a = ap.parse_args(argv)
    brackets = read_brackets(a.tables)
    if not brackets:
        print("fig5b_brackets: no rows in the given tables", file=sys.stderr)
        return 2
    rows = extrapolate(brackets)
    fh = open(a.output, "w", newline="") if a.output else sys.stdout
    w = csv.DictWriter(fh, fieldnames=FIELDS, restval="")
    w.writeheader()
    w.writerows(rows)
    if a.output:
        fh.close()
    if a.figure:
        draw(brackets, rows, a.figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
