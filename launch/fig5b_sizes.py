#!/usr/bin/env python
"""phi_c against N: the absorption bracket of each system size, per Fig. 5b study (issue 18; docs/results.md,
"Why the data at these sizes cannot reach phi_c(eps -> 0) = 0.64").

Reads activity tables (``mpisim-analysis activity -o``; columns scheme, n, phi, kick_size, learning_rate,
batch_fraction, n_seeds, n_absorbed), one study each, and applies :func:`analysis.fss.absorption_bracket`
to the rows of one N at a time: every seed of that N absorbed at ``phi_all_absorbed``, none at
``phi_none_absorbed``; ``phi_half`` where half of them did (interpolated). No scaling form is assumed.
Prints a Markdown table (a study a row, an N a column) and with ``-o`` writes the brackets as CSV.

    launch/fig5b_sizes.py docs/results/fig5b-*-eps*-activity.csv -o docs/results/fig5b-sizes.csv
"""
import argparse
import csv
import sys
from pathlib import Path

from analysis.fss import absorption_bracket
from analysis.io import effective_kick_of_row, write_csv

FIELDS = ("study", "scheme", "batch_fraction", "eps", "n", "n_phi", "phi_all_absorbed", "phi_none_absorbed",
          "phi_half")


def size_brackets(path):
    """One row (FIELDS) per N of the activity table at ``path``."""
    with open(path, newline="") as fh:
        rows = [{**r, "n_seeds": int(r["n_seeds"]), "n_absorbed": int(r["n_absorbed"])} for r in csv.DictReader(fh)]
    if not rows:
        return []
    first = rows[0]
    eps = effective_kick_of_row(first)
    study = Path(path).name.removesuffix("-activity.csv").removeprefix("fig5b-")
    out = []
    for n in sorted({int(r["n"]) for r in rows}):
        mine = [r for r in rows if int(r["n"]) == n]
        b = absorption_bracket(mine)
        out.append({"study": study, "scheme": first["scheme"], "batch_fraction": first["batch_fraction"],
                    "eps": eps, "n": n, "n_phi": len(mine), "phi_all_absorbed": b["phi_all_absorbed"],
                    "phi_none_absorbed": b["phi_none_absorbed"], "phi_half": b["phi_half"][n]})
    return out


def markdown(rows):
    sizes = sorted({r["n"] for r in rows})
    lines = ["| study | eps | " + " | ".join(f"N = {n}" for n in sizes) + " |",
             "|---|---|" + "---|" * len(sizes)]
    for study in dict.fromkeys(r["study"] for r in rows):
        mine = {r["n"]: r for r in rows if r["study"] == study}
        cells = [f"[{mine[n]['phi_all_absorbed']:g}, {mine[n]['phi_none_absorbed']:g}]" if n in mine else "-"
                 for n in sizes]
        lines.append(f"| {study} | {next(iter(mine.values()))['eps']:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tables", nargs="+", help="activity CSVs, one study each")
    ap.add_argument("-o", "--output", help="CSV of the brackets per size")
    a = ap.parse_args(argv)
    rows = sorted((r for path in a.tables for r in size_brackets(path)),
                  key=lambda r: (r["scheme"], -r["eps"], r["n"]))
    if not rows:
        print("fig5b_sizes: no rows in the given tables", file=sys.stderr)
        return 2
    print(markdown(rows))
    if a.output:
        write_csv(a.output, rows, FIELDS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
