#!/usr/bin/env python
"""Fig. S2 of schemes analysed apart: the ``figS2.csv`` tables (and ``figS2_history.csv`` beside them) of
``mpisim-analysis figures --which figS2``, drawn again in one figure with one pair of tables, so that runs
of N = 1e6 made in different sessions (whose run files are gone) meet in one figure.

A table ``X.csv`` brings its in-run history from ``X_history.csv`` when that file exists. Curves are keyed by
(scheme, phi, N, b_f); one key in two tables is an error.

    launch/figs2_combine.py docs/results/figS2-bro-pairwise.csv docs/results/figS2-sgd-rcd.csv \\
        -o docs/results/figs2-all    # figS2.{png,pdf,csv}, figS2_history.csv
"""
import argparse
import csv
import math
import sys
from pathlib import Path

import numpy as np

from analysis.errors import AnalysisError
from analysis.figures import figS2


def _number(text, kind=float):
    return None if text in ("", None) else kind(float(text))


def read_groups(paths):
    """figS2's groups (k, S, counts, alpha, alpha_err, history) from its tables, in the order read."""
    groups = {}
    for path in map(Path, paths):
        rows = list(csv.DictReader(open(path)))
        history = path.with_name(path.stem + "_history.csv")
        past = list(csv.DictReader(open(history))) if history.is_file() else []
        mine = {}
        for r in rows:
            key = (r["scheme"], float(r["phi"]), int(r["n"]), _number(r["batch_fraction"]))
            if key in groups:
                raise AnalysisError(f"{path}: the curve {key} is also in an earlier table")
            g = mine.setdefault(key, {"scheme": key[0], "phi": key[1], "n": key[2], "batch_fraction": key[3],
                                      "k": [], "S": [], "counts": [], "alpha": float(r["alpha"] or math.nan),
                                      "alpha_err": float(r["alpha_err"] or math.nan), "history": None})
            g["k"].append(float(r["k"]))
            g["S"].append(float(r["S"]))
            g["counts"].append(int(r["n_kvectors"]))
        for r in past:
            key = (r["scheme"], float(r["phi"]), int(r["n"]), _number(r["batch_fraction"]))
            if key in mine:
                h = mine[key]["history"] = mine[key]["history"] or {"step": [], "S": [], "k_max": float(r["k_max"])}
                h["step"].append(int(r["step"]))
                h["S"].append(float(r["S_small_k"]))
        groups.update(mine)
    for g in groups.values():
        for name in ("k", "S", "counts"):
            g[name] = np.asarray(g[name])
        if g["history"] is not None:
            g["history"] = {**g["history"], "step": np.asarray(g["history"]["step"]),
                            "S": np.asarray(g["history"]["S"])}
    return list(groups.values())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tables", nargs="+", help="figS2.csv tables (their _history.csv beside them)")
    ap.add_argument("-o", "--out", required=True, help="directory of the figure and its tables")
    a = ap.parse_args(argv)
    try:
        for p in figS2(read_groups(a.tables), Path(a.out)):
            print(p)
    except (AnalysisError, OSError, KeyError, ValueError) as exc:
        print(f"figs2_combine: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
