#!/usr/bin/env python
"""Where phi_c estimates move with run length and system size (issue 18: show why data at small N and
short runs cannot reach phi_c(eps -> 0) = 0.64, rather than state it).

For each family (scheme, b_f, step size) of the runs given (files, directories or sweep manifests):

* **against run length**: every run cut at T steps (T from --lengths; analysis.survival.outcome_at):
  absorbed by T if its absorbed_step <= T, else active at T (a run that stopped earlier as steady
  counts as active: it was; how many runs that is, is printed: beyond the steady stops the table is
  censored; `mpisim-analysis survival --censored` treats such runs otherwise). Per N, phi_half(T) is
  where the absorbed fraction crosses 1/2 (linear between grid points,
  analysis.fss.absorption_bracket), and phi_all(T) the largest phi at which every seed of that N
  absorbed by T. A phi_c estimate from runs of length T can be no better than these: they rise with T
  while runs near phi_c are still relaxing.
* **against N**: the fixed-exponent f_inf collapse (analysis.fss.Collapse, the default analysis) on
  each pair of neighbouring sizes, and on all sizes: phi_c, its error, and whether it is a value or a
  bound.

    launch/phic_vs_length.py runs/fig5b/bro-pairwise-eps0.1/*/manifest.tsv --continued runs/steady-check -o length.csv
"""
import argparse
import csv
import math
import sys
import warnings

from analysis.activity import ActivityTable
from analysis.critical import absorption_bracket
from analysis.fss import Collapse
from analysis.io import load_runs
from analysis.survival import is_censored, outcome_at


def family_of(run):
    p = run.params
    return (p.scheme, p.batch_fraction, p.step_size)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--continued", metavar="DIR", action="append",
                    help="continuations of the runs: read in place of their originals (as mpisim-analysis --continued)")
    ap.add_argument("--lengths", default="2500,5000,10000,20000,50000,100000,200000",
                    help="run lengths T (steps), comma-separated")
    ap.add_argument("-o", "--output", help="CSV of the run-length table (default: print only)")
    args = ap.parse_args(argv)
    lengths = [int(float(x)) for x in args.lengths.split(",")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runs = load_runs(args.inputs, args.continued)
    families = {}
    for r in runs:
        families.setdefault(family_of(r), []).append(r)
    out = []
    for fam, fruns in sorted(families.items(), key=lambda kv: tuple(map(str, kv[0]))):
        scheme, bf, step = fam
        name = f"{scheme}" + (f" b_f={bf:g}" if bf is not None and not math.isnan(bf) else "") + f" step={step:g}"
        print(f"# {name}: {len(fruns)} runs")
        last = {id(r): max(int(r.activity()[0][-1]), r.absorbed_step or 0) for r in fruns}
        longest = max(last.values())
        print("T\t" + "\t".join(f"N={n}: phi_all, phi_half" for n in sorted({r.params.n for r in fruns}))
              + "\tstopped steady before T (counted active)")
        for T in lengths:
            if T > longest:
                break
            rows = {}
            censored = sum(is_censored(r.absorbed_step, last[id(r)], T) for r in fruns)
            for r in fruns:
                key = (r.params.n, r.params.phi)
                row = rows.setdefault(key, {"n": key[0], "phi": key[1], "n_seeds": 0, "n_absorbed": 0})
                row["n_seeds"] += 1
                row["n_absorbed"] += outcome_at(r.absorbed_step, last[id(r)], T, censored="active")
            cells = []
            for n in sorted({k[0] for k in rows}):
                sub = [v for k, v in rows.items() if k[0] == n]
                b = absorption_bracket(sub)
                cells.append((n, b["phi_all_absorbed"], b["phi_half"].get(n, math.nan)))
                out.append({"family": name, "T": T, "n": n, "phi_all_absorbed": b["phi_all_absorbed"],
                            "phi_half": b["phi_half"].get(n, math.nan), "stopped_steady_before_T": censored})
            print(f"{T}\t" + "\t".join(f"{pa:.4f}, {ph:.4f}" for _, pa, ph in cells) + f"\t{censored}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = ActivityTable().compute(fruns)
        sizes = sorted({r["n"] for r in table.rows})
        sets = [sizes[i:i + 2] for i in range(len(sizes) - 1)] + ([sizes] if len(sizes) > 2 else [])
        for s in sets:
            rows = [r for r in table.rows if r["n"] in s]
            try:
                c = Collapse("f_inf", dim=3).compute(rows)
            except Exception as exc:       # too few usable points: say so, go on
                print(f"collapse N = {s}: not fitted ({exc})")
                continue
            print(f"collapse N = {s}: phi_c = {c.phi_c_label()}, S = {c.quality:.2f}")
    if args.output:
        with open(args.output, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(out[0]))
            w.writeheader()
            w.writerows(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
